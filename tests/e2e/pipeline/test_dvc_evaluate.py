"""`dvc repro` through evaluate on tiny synthetic data: metrics, comparison table, figures, MLflow records."""

import json
import re
import shutil

import pytest
import vl_convert

from helpers import RepoCopy, mlflow_client, records_of
from seecam.params import RESERVED_NAMES


def test_evaluate_writes_both_models_and_the_comparison(pipeline_repo):
    root = pipeline_repo.root
    report = json.loads((root / "reports/evaluate/metrics.json").read_text())
    assert set(report) - {"cnn", "se"} <= set(RESERVED_NAMES)  # no model may take the other keys' names
    assert report["cnn"].keys() == report["se"].keys()
    for name in ("cnn", "se"):
        values = report[name]
        assert values["test_acc_ci_low"] <= values["test_acc"] <= values["test_acc_ci_high"]
        assert values["parameters"] > 1_000_000
        assert values["latency_ms"] > 0 and values["throughput_images_per_s"] > 0 and values["train_seconds"] > 0
        for timed in ("latency_ms", "throughput_images_per_s"):  # median of the timing rounds, inside their IQR
            assert 0 < values[f"{timed}_q1"] <= values[timed] <= values[f"{timed}_q3"], timed
    # the exact counts of the card's layers (tests/unit/test_cost.py adds them up by hand)
    assert (report["cnn"]["flops_per_image"], report["se"]["flops_per_image"]) == (22_751_232, 22_756_608)
    confusion = json.loads((root / "reports/evaluate/confusion.json").read_text())
    assert sum(map(sum, confusion["cnn"])) == 300  # the test split
    comparison = report["comparison"]["se"]  # one comparison per candidate: every model but evaluate.baseline
    assert list(report["comparison"]) == ["se"]
    assert comparison["acc_diff"] == pytest.approx(report["se"]["test_acc"] - report["cnn"]["test_acc"])
    table = (root / "reports/evaluate/comparison.md").read_text()
    assert "| metric | cnn | se | se − cnn | better |" in table and "the difference is **" in table
    assert "| latency, batch 1 (ms): median [IQR] of timing rounds |" in table
    assert "| training wall time on this machine (s) |" in table and "| not compared (wall time) |" in table
    for figure in ("confusion.png", "reliability.png", "per_class_accuracy.png"):
        assert (root / "reports/evaluate" / figure).read_bytes()[:4] == b"\x89PNG"

    shown = pipeline_repo.dvc("metrics", "show", "--json").stdout
    (workspace,) = json.loads(shown).values()
    metrics = workspace["data"]["reports/evaluate/metrics.json"]["data"]
    assert "test_acc" in metrics["cnn"] and "test_acc" in metrics["se"]

    client = mlflow_client(root)
    records = {}
    for name in ("cnn", "se"):
        training = json.loads((root / f"reports/train/{name}/run.json").read_text())["run_id"]
        (records[name],) = records_of(client, training, "evaluate")  # one child run: this configuration's
        record = records[name]
        assert record.data.metrics["test_acc"] == pytest.approx(report[name]["test_acc"])
        assert record.info.run_name == f"{name} · seed 42 · evaluate" and record.info.status == "FINISHED"
        assert record.data.params["evaluate.bootstrap_samples"] == "100"  # use_tiny_synthetic_data's
        assert "test_acc" not in client.get_run(training).data.metrics  # the training run keeps training numbers
    assert {k for k in records["cnn"].data.metrics if k.startswith("test_")} == \
        {k for k in records["se"].data.metrics if k.startswith("test_")}


def legend(spec: dict) -> list[str]:
    """The texts of a Vega-Lite chart rendered to SVG (vl-convert, what the offline plots page inlines)."""
    return re.findall(r"<text[^>]*>([^<]*)</text>", vl_convert.vegalite_to_svg(spec))


def test_dvc_plots_draw_every_model_in_its_colour_from_evaluates_long_tables(pipeline_repo):
    """Issue 25: dvc.yaml's plots named cnn's and se's files; evaluate's long tables hold every model's rows."""
    root = pipeline_repo.root
    history = (root / "reports/evaluate/training_history.csv").read_text().splitlines()
    assert history[0] == "model,epoch,train_loss,train_acc,val_loss,val_acc,lr,epoch_seconds"
    assert [line.split(",")[:2] for line in history[1:]] == [[m, str(e)] for m in ("cnn", "se") for e in (1, 2, 3)]
    plots = json.loads(pipeline_repo.dvc("plots", "show", "--json").stdout)["data"]
    assert sorted(plots) == ["Accuracy per epoch", "Loss per epoch", "Loss per iteration"]
    for title, (chart, *_) in plots.items():
        texts = legend(chart["content"])
        assert {"cnn", "se", "model", title} <= set(texts), (title, texts)
        colours = chart["content"]["spec"]["encoding"]["color"]
        assert colours["field"] == "model" and colours["sort"] is None  # params.yaml's order: cnn blue, se orange


def test_evaluate_without_models_says_which_stage_to_run(repo_copy):
    repo_copy.use_tiny_synthetic_data()
    repo_copy.stage("download")
    failed = repo_copy.stage("evaluate", check=False)
    assert failed.returncode == 2
    assert failed.stderr.strip() == "error: models/cnn.pt: model file missing; run `dvc repro train_cnn`"
    assert not (repo_copy.root / "reports/evaluate").exists()


def test_an_edit_to_a_later_stage_tracking_helper_reruns_evaluate_and_never_training(pipeline_repo, tmp_path):
    """tracking/stages.py is evaluate's, explain's and report's, not training's: no retrain, no lost checkpoint.

    The edit goes to a copy of the trained pipeline (`dvc status` reads no MLflow store, so that stays out):
    the shared one stays as the other tests read it.
    """
    root = tmp_path / "repo"
    shutil.copytree(pipeline_repo.root, root, symlinks=True,
                    ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", "mlruns", "checkpoints"))
    copy = RepoCopy(root)
    assert "up to date" in copy.dvc("status").stdout  # the copy is the trained pipeline
    helper = root / "src/seecam/tracking/stages.py"
    helper.write_text(helper.read_text() + "\n# an evaluate-only edit\n")
    trained = copy.dvc("status", "train_cnn", "train_se").stdout
    evaluated = copy.dvc("status", "evaluate").stdout
    assert "up to date" in trained, trained
    assert "src/seecam/tracking/stages.py" in evaluated and "modified" in evaluated, evaluated
