"""A teammate's clone that pulled the outputs from a DVC remote is up to date and reruns nothing."""

import pytest

pytestmark = pytest.mark.e2e


def test_clone_that_pulled_from_a_remote_is_up_to_date_and_reruns_nothing(repo_copy, tmp_path):
    repo_copy.use_tiny_synthetic_data(epochs=1, train_size=400)
    git = ("git", "-c", "user.name=t", "-c", "user.email=t@example.com")
    repo_copy.run(*git, "add", "-A")
    repo_copy.run(*git, "commit", "-qm", "project")
    repo_copy.dvc("repro")
    repo_copy.dvc("remote", "add", "-d", "shared", str(tmp_path / "remote"))
    repo_copy.dvc("push")
    repo_copy.run(*git, "add", "-A")  # dvc.lock, the remote's config and the git-tracked outputs
    repo_copy.run(*git, "commit", "-qm", "results")

    clone = tmp_path / "clone"
    repo_copy.run("git", "clone", "-q", str(repo_copy.root), str(clone))
    teammate = type(repo_copy)(clone)
    teammate.dvc("pull")
    status = teammate.dvc("status")
    assert "Data and pipelines are up to date." in status.stdout, status.stdout
    rerun = teammate.dvc("repro")
    assert "Running stage" not in rerun.stdout, rerun.stdout
