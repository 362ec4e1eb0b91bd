import pytest

from conftest import free_port
from seecam.errors import SeecamError
from seecam.params import EvaluateParams
from seecam.report import faithfulness_table, provenance, run_report, seeds_verdict, table, verdict
from seecam.verdict import ModelRun, Pair, summarize

EVALUATION = {
    "cnn": {"test_acc": 0.80, "parameters": 1_147_914, "flops_per_image": 22_751_232, "latency_ms": 0.9,
            "train_seconds": 100.0},
    "se": {"test_acc": 0.82, "parameters": 1_150_602, "flops_per_image": 22_756_608, "latency_ms": 1.4,
           "train_seconds": 130.0},
    "comparison": {"acc_diff": 0.02, "acc_diff_ci_low": 0.01, "acc_diff_ci_high": 0.03,
                   "acc_diff_significant": True, "mcnemar_p": 0.001},
}


def test_verdict_names_the_winner_the_interval_and_the_cost():
    text = verdict(EVALUATION, "cnn", "se")
    assert "SE is more accurate" in text and "CNN 80.00%, SE 82.00%" in text
    assert "CI [+1.00, +3.00]" in text
    assert "beyond test-set noise for these two trained models" in text
    assert "training-seed variation not measured (see <code>seecam sweep</code>)" in text
    assert "+2,688 parameters" in text and "+5,376 FLOPs per image" in text and "0.90 → 1.40 ms" in text


def test_verdict_within_test_set_noise():
    evaluation = {**EVALUATION, "comparison": {**EVALUATION["comparison"], "acc_diff_significant": False,
                                               "acc_diff_ci_low": -0.01}}
    assert "within test-set noise for these two trained models" in verdict(evaluation, "cnn", "se")


def test_table_escapes_and_aligns_numbers():
    html = table(["a", "b"], [["<x>", 1234567], ["y", 0.5]])
    assert "&lt;x&gt;" in html and '<td class="num">1,234,567</td>' in html and "0.5000" in html


def test_faithfulness_table_shows_an_undefined_randomisation_check():
    explain = {"cnn": {"deletion_auc": 0.1, "randomization_spearman": 0.05, "randomization_undefined_pairs": 0},
               "se": {"deletion_auc": 0.2, "randomization_undefined_pairs": 500}}
    html = faithfulness_table(explain)
    assert "randomisation rank correlation</td><td class=\"num\">0.0500</td><td class=\"\">undefined" in html
    assert "constant map (left out)</td><td class=\"num\">0</td><td class=\"num\">500" in html


@pytest.fixture
def stage_outputs(tmp_path, monkeypatch):
    """A working directory where evaluate and explain have run (their metrics files exist)."""
    monkeypatch.chdir(tmp_path)
    for stage in ("evaluate", "explain"):
        (tmp_path / "reports" / stage).mkdir(parents=True)
        (tmp_path / "reports" / stage / "metrics.json").write_text("{}\n")
    return tmp_path


def test_report_refuses_an_unwritable_page_before_building_it(stage_outputs):
    (stage_outputs / "reports/index.html").mkdir()
    with pytest.raises(SeecamError, match="reports/index.html: a directory is in the way of this output file"):
        run_report(EvaluateParams())


def test_report_checks_the_tracking_server_before_writing_the_page(stage_outputs, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    with pytest.raises(SeecamError, match=f"MLflow tracking server {url} is unreachable"):
        run_report(EvaluateParams())
    assert not (stage_outputs / "reports/index.html").exists()


def test_verdict_across_seeds_section_gives_the_sentence_interval_figure_and_filter():
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc, "test_acc/cat": acc + 0.1})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.5 + d)) for s, d in enumerate([0.01, -0.02, 0.03])]
    text = seeds_verdict({"config_sha": "abc"} | summarize(pairs, "cnn", "se"))
    assert "not resolved with 3 seeds; about" in text and "over 3 training seeds" in text
    assert "+0.67 points" in text and "tags.config_sha = 'abc'" in text and "<img" in text


def test_provenance_shows_params_yaml_with_tracking_passwords_masked():
    page = provenance("tracking:\n  uri: http://alice:s3cret@team:5000\n", "cpu")
    assert "http://alice:***@team:5000" in page and "s3cret" not in page
