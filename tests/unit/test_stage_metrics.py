"""The evaluate and explain metrics files as types: a real file reads and writes back to the same bytes."""

import json
from pathlib import Path

import pytest

from seecam.atomic import write_json
from seecam.errors import SeecamError
from seecam.params import RESERVED_NAMES
from seecam.stage_metrics import EvaluateMetrics, ExplainMetrics

# The metrics files of a tiny synthetic `dvc repro` (3 epochs, 1,500 training and 300 test images, CPU)
REAL = Path(__file__).parent / "metrics_files"


@pytest.mark.parametrize("metrics", [EvaluateMetrics, ExplainMetrics])
def test_a_real_metrics_file_round_trips_byte_for_byte(metrics, tmp_path):
    """DVC compares these files across experiments: reading and writing them through the type changes no byte."""
    real = REAL / f"{metrics.STAGE}.json"
    written = tmp_path / "metrics.json"
    write_json(written, metrics.load(real).to_json())
    assert written.read_bytes() == real.read_bytes()


def test_the_evaluate_file_reads_by_attribute():
    evaluation = EvaluateMetrics.load(REAL / "evaluate.json")
    assert list(evaluation.models) == ["cnn", "se"] and evaluation.device == "cpu"
    se = evaluation.comparison["se"]
    assert se.acc_diff == pytest.approx(evaluation.models["se"]["test_acc"] - evaluation.models["cnn"]["test_acc"])
    assert se.acc_diff_significant == (se.acc_diff_ci_low > 0 or se.acc_diff_ci_high < 0)
    assert se.diffs["parameters"] == evaluation.models["se"]["parameters"] - evaluation.models["cnn"]["parameters"]
    assert "diff/parameters" in json.loads((REAL / "evaluate.json").read_text())["comparison"]["se"]


def test_the_explain_file_reads_by_attribute():
    explanation = ExplainMetrics.load(REAL / "explain.json")
    assert list(explanation.models) == ["cnn", "se"]
    assert explanation.layer == "block3" and explanation.samples == 300
    assert "se_excitation/block1/within_class_std" in explanation.models["se"]
    assert not any(key.startswith("se_excitation") for key in explanation.models["cnn"])  # no gates, no excitation


def test_no_model_may_take_a_name_the_files_use_for_their_own_keys():
    """params.yaml refuses a model named like a key the metrics files keep beside the models (RESERVED_NAMES)."""
    assert set(EvaluateMetrics.own_keys()) | set(ExplainMetrics.own_keys()) == set(RESERVED_NAMES)


@pytest.mark.parametrize("metrics", [EvaluateMetrics, ExplainMetrics])
def test_a_missing_file_names_the_stage_that_writes_it(metrics, tmp_path):
    with pytest.raises(SeecamError, match=rf"^{tmp_path}/none.json is missing; run `dvc repro {metrics.STAGE}` first$"):
        metrics.load(tmp_path / "none.json")


@pytest.mark.parametrize("metrics", [EvaluateMetrics, ExplainMetrics])
@pytest.mark.parametrize("text", ['{"cnn": {}, "se": {}}', "[1, 2]", "{not json"])
def test_a_file_the_stage_did_not_write_is_one_line_naming_the_stage(metrics, text, tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(text)
    with pytest.raises(SeecamError, match=rf"metrics.json is not what the {metrics.STAGE} stage writes \(.*\); "
                                          rf"run `dvc repro {metrics.STAGE}`$"):
        metrics.load(path)
