"""The report stage's page: every section from the other stages' outputs, kept as a record under both training runs."""

import json

from helpers import mlflow_client, records_of


def test_report_is_self_contained_and_logged_to_both_runs(pipeline_repo):
    root = pipeline_repo.root
    page = (root / "reports/index.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 8
    assert "src=\"http" not in page and "src=\"file" not in page  # opens offline, can be mailed
    meta = json.loads((root / "data/cifar10/meta.json").read_text())
    assert meta["sha256"]["all"] in page
    client = mlflow_client(root)
    for name in ("cnn", "se"):
        run_id = json.loads((root / f"reports/train/{name}/run.json").read_text())["run_id"]
        assert run_id in page
        (record,) = records_of(client, run_id, "report")
        assert "reports/index.html" in {a.path for a in client.list_artifacts(record.info.run_id, "reports")}
