"""A run's identity is what shapes its numbers: a comment edit in the training code retrains nothing.

The test changes a copy of the trained pipeline (conftest.py's `trained_copy`), never the shared one.
"""

import json

from helpers import all_runs, mlflow_client

NAMES = ("cnn", "se")


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

