"""`seecam server`: the command it runs, and each bad input refused in one line before anything starts."""

import os
import socket

import pytest

from helpers import free_port
from seecam.cli import main
from seecam.errors import SeecamError
from seecam.server import ServerConfig, check_config

PG = "postgresql://mlflow:s3cret@127.0.0.1:{port}/mlflow"


def test_printed_command_runs_a_served_artifact_store_with_the_password_masked():
    config = ServerConfig(PG.format(port=5432), "s3://bucket/mlflow", port=5001)
    argv = config.command()
    assert argv[:2] == ["mlflow", "server"] and "--serve-artifacts" in argv
    assert argv[argv.index("--backend-store-uri") + 1] == PG.format(port=5432)
    assert argv[argv.index("--artifacts-destination") + 1] == "s3://bucket/mlflow"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    line = config.masked_command()
    assert line.startswith("MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow server ")
    assert "postgresql://mlflow:***@127.0.0.1:5432/mlflow" in line and "s3cret" not in line


def test_another_interface_needs_allowed_hosts():
    with pytest.raises(SeecamError, match="--host 0.0.0.0 exposes .*--allowed-hosts"):
        check_config(ServerConfig("sqlite:////tmp/x.db", "/tmp/a", host="0.0.0.0", port=free_port()))


def test_port_in_use_is_refused(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(SeecamError, match=f"cannot listen on 127.0.0.1:{port} .*another --port"):
            check_config(ServerConfig(f"sqlite:///{tmp_path}/m.db", str(tmp_path), port=port))


@pytest.mark.parametrize(("uri", "message"), [
    ("mysql://root:s3cret@127.0.0.1/mlflow", r"no database driver for mysql \(MySQLdb\).*install"),
    ("nosuchdb://root:s3cret@127.0.0.1/mlflow", r"nosuchdb://root:\*\*\*@127.0.0.1/mlflow is not a database URI"),
])
def test_database_without_a_driver_is_refused_without_its_password(uri, message, tmp_path):
    with pytest.raises(SeecamError, match=message) as err:
        check_config(ServerConfig(uri, str(tmp_path), port=free_port()))
    assert "s3cret" not in str(err.value)


def test_database_that_does_not_answer_is_refused_without_its_password(tmp_path):
    if not os.environ.get("CI"):
        pytest.importorskip("psycopg", reason="psycopg[binary] is in the test extra")
    uri = PG.format(port=free_port())
    with pytest.raises(SeecamError, match=r"database postgresql://mlflow:\*\*\*@.* does not answer") as err:
        check_config(ServerConfig(uri, str(tmp_path), port=free_port()))
    assert "s3cret" not in str(err.value)


def test_cli_reports_a_bad_server_input_as_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(["server", "--host", "0.0.0.0", "--port", str(free_port())])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --host 0.0.0.0") and err.count("\n") == 1
