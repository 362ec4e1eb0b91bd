"""A run's identity is what shapes its numbers: a comment edit in the training code retrains nothing.

The test changes a copy of the trained pipeline (its git, DVC cache and MLflow store), never the shared one.
"""

import json
import shutil
import sqlite3
from contextlib import closing

import pytest

from helpers import RepoCopy, all_runs, mlflow_client

NAMES = ("cnn", "se")


@pytest.fixture(scope="module")
def trained_copy(pipeline_repo, tmp_path_factory) -> RepoCopy:
    """A copy of the trained pipeline that these tests may change; its MLflow store keeps artifacts in the copy."""
    root = tmp_path_factory.mktemp("records") / "repo"
    shutil.copytree(pipeline_repo.root, root, symlinks=True)
    old, new = (pipeline_repo.root / "mlartifacts").as_uri(), (root / "mlartifacts").as_uri()
    with closing(sqlite3.connect(root / "mlflow.db")) as db, db:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                              ("logged_models", "artifact_location")):
            db.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (old, new))
    return RepoCopy(root)


def training_outputs(root) -> dict:
    return {path: path.read_bytes() for name in NAMES
            for path in (root / f"models/{name}.pt", *sorted((root / f"reports/train/{name}").iterdir()))}


def test_a_comment_edit_in_the_training_code_retrains_nothing(trained_copy):
    """DVC sees training_loop.py's bytes change and runs both train stages; each recognises its finished training (same
    checkpoint key: a comment is no behaviour), trains no epoch, rewrites the same outputs and keeps its run."""
    root = trained_copy.root
    before, runs = training_outputs(root), len(all_runs(root))
    code = root / "src/seecam/training_loop.py"
    original = code.read_text()
    edited = original.replace('"""The training loop:', '# a comment a reader added\n"""The training loop, reworded:', 1)
    assert edited != original  # the edit lands (the loop's docstring is where the test expects it)
    code.write_text(edited)
    try:
        rerun = trained_copy.dvc("repro")
    finally:
        code.write_text(original)
    log = rerun.stdout + rerun.stderr
    assert "Running stage 'train_cnn'" in rerun.stdout and "Running stage 'train_se'" in rerun.stdout
    for name in NAMES:
        assert f"{name}: reusing its finished training" in log, log
        assert f"{name} epoch 1/3" not in log, log
    assert training_outputs(root) == before  # byte for byte: run.json's run id and config_sha too
    assert "Running stage 'evaluate'" not in rerun.stdout  # so nothing downstream reran
    assert len(all_runs(root)) == runs
    client = mlflow_client(root)
    for name in NAMES:
        info = json.loads((root / f"reports/train/{name}/run.json").read_text())
        tags = client.get_run(info["run_id"]).data.tags
        assert (tags["config_sha"], tags["model_sha"]) == (info["config_sha"], info["model_sha"])

