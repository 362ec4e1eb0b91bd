"""Passwords in tracking URIs are masked in everything seecam shows and records, and come back on reconnect."""

import os

import pytest

from seecam.credentials import masked, mlflow_uri, resolve
from seecam.errors import SeecamError


@pytest.mark.parametrize(("uri", "shown"), [
    ("http://alice:s3cret@mlflow.example.com:5000", "http://alice:***@mlflow.example.com:5000"),
    ("https://alice:p%40ss@host/prefix", "https://alice:***@host/prefix"),
    ("postgresql://mlflow:s3cret@127.0.0.1:5432/mlflow", "postgresql://mlflow:***@127.0.0.1:5432/mlflow"),
    ("postgresql+psycopg2://u:a@b@db/x", "postgresql+psycopg2://u:***@db/x"),  # unencoded @ in the password
    ("postgresql://db/mlflow?user=u&password=s3cret&sslmode=require",
     "postgresql://db/mlflow?user=u&password=***&sslmode=require"),
    ("mysql+pymysql://root:pw@db/mlflow", "mysql+pymysql://root:***@db/mlflow"),
    ("http://token@host:5000", "http://token@host:5000"),  # a user name alone is no secret
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("sqlite:////repo/mlflow.db", "sqlite:////repo/mlflow.db"),
    ("databricks", "databricks"),
    ("", ""),
])
def test_masked_hides_every_password_and_nothing_else(uri, shown):
    assert masked(uri) == shown
    assert masked(shown) == shown  # idempotent: masking a run.json URI again changes nothing


def test_mlflow_gets_a_server_uri_without_its_credentials_and_them_as_basic_auth(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    assert mlflow_uri("http://alice:p%40ss@host:5000/x") == "http://host:5000/x"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("alice", "p@ss")
    assert mlflow_uri("postgresql://u:pw@db/x") == "postgresql://u:pw@db/x"  # SQLAlchemy needs it in the URI


def test_user_set_basic_auth_variables_win(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "bobs")
    assert mlflow_uri("http://alice:x@host") == "http://host"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "bobs"


@pytest.mark.parametrize(("stored", "configured", "real"), [
    ("postgresql://u:***@db/x", "postgresql://u:pw@db/x", "postgresql://u:pw@db/x"),  # same store, now configured
    ("http://u:***@host:5000", "", "http://host:5000"),  # MLflow takes the rest from MLFLOW_TRACKING_*
    ("http://u:***@host:5000", "http://u:pw@host:5000", "http://u:pw@host:5000"),
    ("sqlite:////repo/mlflow.db", "http://elsewhere", "sqlite:////repo/mlflow.db"),  # the run stays where it is
    ("http://host:5000", "", "http://host:5000"),
])
def test_resolve_finds_the_real_uri_behind_a_masked_one(stored, configured, real):
    assert resolve(stored, configured) == real


def test_resolve_without_the_database_password_says_where_to_put_it():
    with pytest.raises(SeecamError, match=r"postgresql://u:\*\*\*@db/x.*set MLFLOW_TRACKING_URI"):
        resolve("postgresql://u:***@db/x", "postgresql://u:pw@other/x")


def test_masked_covers_uris_inside_text():
    text = "tracking:\n  uri: http://alice:s3cret@host:5000  # team server\n  experiment: team\n"
    assert masked(text) == "tracking:\n  uri: http://alice:***@host:5000  # team server\n  experiment: team\n"
