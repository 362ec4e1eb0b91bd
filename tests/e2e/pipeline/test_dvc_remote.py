"""A shared DVC remote, a directory or S3 (moto's server mode on 127.0.0.1): a teammate's clone that pulled
from it reruns nothing, a clone that changes only `explain.*` reruns only explain and report, and the run
references it pulled (run.json) never lead back to the first clone's MLflow store."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import RepoCopy, copy_with_store, free_port, stop_process_group, tool_env, wait_until_answering

BUCKET = "seecam-remote"
# moto accepts any key; DVC's S3 plugin reads them from the environment like any AWS client.
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(pipeline_repo, tmp_path_factory) -> RepoCopy:
    """A copy of the trained pipeline with its dvc.lock committed: every remote test pushes this same result."""
    repo = copy_with_store(pipeline_repo, tmp_path_factory.mktemp("first-clone") / "project")
    repo.commit("results")  # the code, dvc.lock and the git-tracked metrics; the rest is pushed to the remote
    return repo


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> Iterator[str]:
    """moto's S3 server mode on 127.0.0.1 with one empty bucket; stopped with the session."""
    import boto3

    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, env=tool_env(), start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{endpoint}/moto-api/", process, timeout=60, log=log_path)
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop_process_group(process)


@pytest.fixture(params=["directory", "s3"])
def pushed(request, project, tmp_path) -> RepoCopy:
    """The project with this kind of remote as its committed default, its outputs and run cache pushed."""
    if request.param == "directory":
        project.dvc("remote", "add", "--force", "-d", "shared-dir", str(tmp_path / "remote"))
    else:
        project.dvc("remote", "add", "--force", "-d", "shared-s3", f"s3://{BUCKET}/cache")
        project.dvc("remote", "modify", "shared-s3", "endpointurl", request.getfixturevalue("s3_endpoint"))
    project.dvc("push", "--run-cache", **S3_ENV)
    project.commit("the team's DVC remote", "--allow-empty")  # a remote pushed to before changes nothing
    return project


def clone(project: RepoCopy, destination: Path) -> RepoCopy:
    project.run("git", "clone", "-q", str(project.root), str(destination))
    return RepoCopy(destination)


def test_clone_that_pulled_from_a_remote_is_up_to_date_and_reruns_nothing(pushed, tmp_path):
    teammate = clone(pushed, tmp_path / "teammate")
    teammate.dvc("pull", "--run-cache", **S3_ENV)
    status = teammate.dvc("status")
    assert "Data and pipelines are up to date." in status.stdout, status.stdout
    rerun = teammate.dvc("repro")
    assert stages_run(rerun.stdout) == set(), rerun.stdout
    assert not (teammate.root / "mlflow.db").exists()


def test_clone_elsewhere_that_changes_explain_reruns_explain_and_report_in_its_own_store(pushed, tmp_path):
    """The first clone's directory is gone (another machine): its path can be neither read nor created."""
    explainer = clone(pushed, tmp_path / "elsewhere" / "explainer")
    away = pushed.root.with_name(pushed.root.name + "-away")
    pushed.root.rename(away)
    try:
        explainer.dvc("pull", **S3_ENV)
        explainer.set_params(explain__top_channels=2)
        rerun = explainer.dvc("repro")
        assert not pushed.root.exists(), "a stage wrote at the first clone's path"
    finally:
        if pushed.root.exists():
            shutil.rmtree(pushed.root)
        away.rename(pushed.root)
    assert stages_run(rerun.stdout) == {"explain", "report"}, rerun.stdout
    own_store = f"sqlite:///{explainer.root.resolve() / 'mlflow.db'}"
    assert f"not found in {own_store}; logging explain results to a new run" in rerun.stderr, rerun.stderr
    assert (explainer.root / "mlflow.db").is_file()
    assert str(pushed.root) not in rerun.stdout + rerun.stderr
