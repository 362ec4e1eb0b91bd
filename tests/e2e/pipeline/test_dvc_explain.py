"""`dvc repro` through explain on tiny synthetic data: every figure and metric, in each model's MLflow record."""

import json
import re

import pytest

from helpers import mlflow_client, records_of
from seecam.params import RESERVED_NAMES

FIGURES = ("gradcam_side_by_side.png", "cam_methods.png", "models/feature_maps_cnn.png", "models/feature_maps_se.png",
           "models/top_channels_cnn.png", "models/top_channels_se.png", "se_excitation.png", "se_mistakes.png")
FAITHFULNESS = {"deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence",
                "randomization_spearman", "pointing_game", "pointing_game_random"}


def test_explain_writes_every_figure_and_metric(pipeline_repo):
    root = pipeline_repo.root
    for figure in FIGURES:
        assert (root / "reports/explain" / figure).read_bytes()[:4] == b"\x89PNG", figure
    assert sorted(p.name for p in (root / "reports/explain/models").iterdir()) == sorted(
        f.removeprefix("models/") for f in FIGURES if f.startswith("models/"))
    report = json.loads((root / "reports/explain/metrics.json").read_text())
    assert set(report) - {"cnn", "se"} <= set(RESERVED_NAMES)  # no model may take the other keys' names
    assert set(report["cnn"]) >= FAITHFULNESS and set(report["se"]) >= FAITHFULNESS
    assert "se_excitation/block3/between_class_std" in report["se"]
    assert report["layer"] == "block3" and report["samples"] == 100  # the fixture's faithfulness_samples

    client = mlflow_client(root)
    for name in ("cnn", "se"):
        training = json.loads((root / f"reports/train/{name}/run.json").read_text())["run_id"]
        (record,) = records_of(client, training, "explain")
        assert record.data.metrics["explain/deletion_auc"] == pytest.approx(report[name]["deletion_auc"])
        assert record.data.params["explain.layer"] == "block3"
        artifacts = {a.path for a in client.list_artifacts(record.info.run_id, "figures/explain")}
        assert "figures/explain/gradcam_side_by_side.png" in artifacts
        assert {f"explain/{k}" for k in FAITHFULNESS} <= set(record.data.metrics)


def test_the_stage_log_says_where_the_time_went(pipeline_repo):
    parts = ("gallery", "cam_methods", "feature maps", "faithfulness", "excitation", "mistakes", "writing", "mlflow")
    line = next(line for line in pipeline_repo.repro_log.splitlines() if line.startswith("explain: "))
    assert re.fullmatch(r"explain: " + ", ".join(rf"{p} \d+\.\d s" for p in parts), re.sub(r" \([^)]*\)", "", line))
    assert re.search(r"faithfulness \d+\.\d s \(100 images\), excitation \d+\.\d s \(300 images\)", line), line


def test_nothing_reruns_after_a_full_repro(pipeline_repo):
    assert "Running stage" not in pipeline_repo.dvc("repro").stdout
