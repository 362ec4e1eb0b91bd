"""A clone in a path with a space and a non-ASCII letter works end to end.

The shared tiny pipeline (conftest's `pipeline_repo`) lives in such a path, so every test of a later stage runs
there; the sweep and verdict test does too. This test adds what a user runs by hand there: `seecam ui`.
"""

import json

from mlflow import MlflowClient

from helpers import UNUSUAL_DIR, mlflow_client, records_of


def test_the_pipeline_and_the_ui_work_from_a_path_with_a_space_and_a_non_ascii_letter(pipeline_repo, mlflow_ui):
    root = pipeline_repo.root
    assert root.name == UNUSUAL_DIR and " " in UNUSUAL_DIR and not UNUSUAL_DIR.isascii()
    assert "Running stage 'report'" in pipeline_repo.repro_log
    runs = {name: json.loads((root / f"reports/train/{name}/run.json").read_text()) for name in ("cnn", "se")}
    assert {info["tracking_uri"] for info in runs.values()} == {""}  # the default store, at this path
    store = mlflow_client(root)
    records = {}
    for name, info in runs.items():
        assert store.get_run(info["run_id"]).info.status == "FINISHED"
        (records[name],) = records_of(store, info["run_id"], "evaluate")
        assert "test_acc" in records[name].data.metrics
        assert "explain/deletion_auc" in records_of(store, info["run_id"], "explain")[0].data.metrics

    assert f"(sqlite:///{root / 'mlflow.db'}):" in mlflow_ui.printed[0]
    served = MlflowClient(mlflow_ui.url)
    for name, info in runs.items():
        assert served.get_run(records[name].info.run_id).data.metrics["test_acc"] >= 0
        (page,) = records_of(served, info["run_id"], "report")
        assert "reports/index.html" in {a.path for a in served.list_artifacts(page.info.run_id, "reports")}
