import json
import re
from dataclasses import replace

import pytest

from helpers import free_port
from seecam.errors import SeecamError
from seecam.params import Params, parse_params
from seecam.report import (
    StageResults,
    build_report,
    faithfulness_table,
    missing_line,
    provenance,
    run_report,
    seeds_verdict,
    single_run,
    table,
)
from seecam.stage_metrics import Comparison, EvaluateMetrics, ExplainMetrics
from seecam.tables import NOISE_MEASURED, NOISE_NOT_MEASURED
from seecam.verdict.record import ModelRun, Pair, Verdict
from seecam.verdict.summary import summarize


def comparison(acc_diff: float, low: float, high: float, mcnemar_p: float) -> Comparison:
    return Comparison(acc_diff, low, high, low > 0 or high < 0, mcnemar_p, NOISE_MEASURED, NOISE_NOT_MEASURED, {})


EVALUATION = EvaluateMetrics(
    {"cnn": {"test_acc": 0.80, "parameters": 1_147_914, "flops_per_image": 22_751_232, "latency_ms": 0.9,
             "latency_ms_q1": 0.85, "latency_ms_q3": 0.95, "train_seconds": 100.0},
     "se": {"test_acc": 0.82, "parameters": 1_150_602, "flops_per_image": 22_756_608, "latency_ms": 1.4,
            "latency_ms_q1": 1.3, "latency_ms_q3": 1.5, "train_seconds": 130.0}},
    {"se": comparison(0.02, 0.01, 0.03, 0.001)}, "cpu")
EXPLANATION = ExplainMetrics({"cnn": {"deletion_auc": 0.1}, "se": {"deletion_auc": 0.2}}, "block3.conv", 10)


def with_models(evaluation: EvaluateMetrics, **models: dict[str, float]) -> EvaluateMetrics:
    return replace(evaluation, models=evaluation.models | models)


def with_comparison(evaluation: EvaluateMetrics, candidate: str = "se", **changes: object) -> EvaluateMetrics:
    return replace(evaluation, comparison=evaluation.comparison | {
        candidate: replace(evaluation.comparison.get(candidate, evaluation.comparison["se"]), **changes)})


def test_single_run_names_the_winner_the_interval_and_the_cost():
    text = single_run(EVALUATION, "cnn", "se")
    assert "SE is more accurate" in text and "CNN 80.00%, SE 82.00%" in text
    assert "CI [+1.00, +3.00]" in text
    assert "beyond test-set noise for these two trained models" in text
    assert "training-seed variation not measured (see <code>seecam sweep</code>)" in text
    assert "+2,688 parameters" in text and "+5,376 FLOPs per image" in text
    assert "latency 0.90 [0.85, 0.95] → 1.40 [1.30, 1.50] ms per image (median [IQR] of timing rounds: " \
           "CNN faster)" in text
    assert "training wall time on this machine 100 → 130 s" in text


def test_a_latency_difference_inside_the_rounds_spread_is_within_noise():
    """Issue 26: the page said "latency 140.02 → 0.81 ms", four digits for a number that moved by a third."""
    evaluation = with_models(EVALUATION, se=EVALUATION.models["se"] | {"latency_ms": 0.93, "latency_ms_q1": 0.8,
                                                                        "latency_ms_q3": 1.2})
    text = single_run(evaluation, "cnn", "se")
    assert "latency 0.90 [0.85, 0.95] → 0.93 [0.80, 1.20] ms per image (median [IQR] of timing rounds: " \
           "within timing noise)" in text


def test_the_metrics_table_shows_spreads_and_never_lets_wall_time_decide():
    from seecam.report import metrics_table

    html = metrics_table(EVALUATION, ["cnn", "se"], "cnn")
    assert re.search(r"latency, batch 1 \(ms\): median \[IQR\] of timing rounds</td><td[^>]*>0.90 \[0.85, 0.95\]"
                     r"</td><td[^>]*>1.40 \[1.30, 1.50\]</td><td[^>]*>\+0.50</td><td[^>]*>cnn</td>", html)
    assert re.search(r"training wall time on this machine \(s\)</td><td[^>]*>100</td><td[^>]*>130</td>"
                     r"<td[^>]*>\+30</td><td[^>]*>not compared \(wall time\)</td>", html)


def test_the_metrics_table_has_a_difference_and_a_better_per_candidate():
    """Issue 25: the table's one "se − cnn" and "better" ignored a third model."""
    from seecam.report import metrics_table

    se8 = {"test_acc": 0.79, "parameters": 1_152_000, "flops_per_image": 22_760_000, "latency_ms": 0.92,
           "latency_ms_q1": 0.80, "latency_ms_q3": 1.2, "train_seconds": 120.0}
    html = metrics_table(with_models(EVALUATION, se8=se8), ["cnn", "se", "se8"], "cnn")
    header = re.search(r"<tr>(<th>.*?)</tr>", html)[1]
    assert re.findall(r"<th>(.*?)</th>", header) == ["metric", "cnn", "se", "se8", "se − cnn", "better",
                                                     "se8 − cnn", "better"]
    assert re.search(r"accuracy \(95% CI\)</td>(<td[^>]*>[^<]*</td>){3}<td[^>]*>\+0.0200</td><td[^>]*>se</td>"
                     r"<td[^>]*>-0.0100</td><td[^>]*>cnn</td>", html)
    assert re.search(r"latency, batch 1 \(ms\).*?<td[^>]*>cnn</td><td[^>]*>\+0.0\d?</td><td[^>]*>within timing "
                     r"noise</td>", html)


def test_single_run_within_test_set_noise():
    evaluation = with_comparison(EVALUATION, acc_diff_significant=False, acc_diff_ci_low=-0.01)
    assert "within test-set noise for these two trained models" in single_run(evaluation, "cnn", "se")


def test_table_escapes_and_aligns_numbers():
    html = table(["a", "b"], [["<x>", 1234567], ["y", 0.5]])
    assert "&lt;x&gt;" in html and '<td class="num">1,234,567</td>' in html and "0.5000" in html


def test_faithfulness_table_shows_an_undefined_randomisation_check():
    explain = replace(EXPLANATION, models={
        "cnn": {"deletion_auc": 0.1, "randomization_spearman": 0.05, "randomization_undefined_pairs": 0},
        "se": {"deletion_auc": 0.2, "randomization_undefined_pairs": 500}})
    html = faithfulness_table(explain, ["cnn", "se"])
    assert "randomisation rank correlation</td><td class=\"num\">0.0500</td><td class=\"\">undefined" in html
    assert "constant map (left out)</td><td class=\"num\">0</td><td class=\"num\">500" in html


@pytest.fixture
def stage_outputs(tmp_path, monkeypatch):
    """A working directory where evaluate and explain have run (their metrics files exist)."""
    monkeypatch.chdir(tmp_path)
    for metrics in (EVALUATION, EXPLANATION):
        metrics.FILE.parent.mkdir(parents=True)
        metrics.FILE.write_text(json.dumps(metrics.to_json()))
    return tmp_path


def test_report_refuses_an_unwritable_page_before_building_it(stage_outputs):
    (stage_outputs / "reports/index.html").mkdir()
    with pytest.raises(SeecamError, match="reports/index.html: a directory is in the way of this output file"):
        run_report(Params())


def test_report_refuses_metrics_files_without_a_model_of_params_yaml_before_building_the_page(stage_outputs):
    """A model added to params.yaml whose evaluate has not run yet: one line that names the stage to run."""
    params = parse_params({"models": {"cnn": {"kind": "cnn"}, "se": {"kind": "se"}, "se8": {"kind": "se"}}})
    with pytest.raises(SeecamError, match=r"^reports/evaluate/metrics.json has no se8, a model of params.yaml; run "
                                          r"`dvc repro evaluate` first$"):
        run_report(params)
    assert not (stage_outputs / "reports/index.html").exists()


def test_report_checks_the_tracking_server_before_writing_the_page(stage_outputs, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    with pytest.raises(SeecamError, match=f"MLflow tracking server {url} is unreachable"):
        run_report(Params())
    assert not (stage_outputs / "reports/index.html").exists()


def test_verdict_across_seeds_section_gives_the_sentence_interval_figure_and_filter():
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc, "test_acc/cat": acc + 0.1})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.5 + d)) for s, d in enumerate([0.01, -0.02, 0.03])]
    text = seeds_verdict(summarize(pairs, "cnn", "se", "abc"))
    assert "not resolved with 3 seeds; about" in text and "over 3 training seeds" in text
    assert "+0.67 points" in text and "tags.config_sha = 'abc'" in text and "<img" in text


def test_provenance_shows_params_yaml_with_tracking_passwords_masked():
    page = provenance("tracking:\n  uri: http://alice:s3cret@team:5000\n", "cpu", ["cnn", "se"])
    assert "http://alice:***@team:5000" in page and "s3cret" not in page


def three_seeds(config_sha: str) -> Verdict:
    def run(model, seed, acc):
        metrics = {"test_acc": acc, "test_acc/cat": acc}
        return ModelRun(f"{model}{seed}", model, seed, metrics, None, f"seed-{seed}-abc123")

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.5 + d)) for s, d in enumerate([0.01, -0.02, 0.03])]
    return summarize(pairs, "cnn", "se", config_sha)


@pytest.fixture
def page_inputs(tmp_path, monkeypatch):
    """The files the report stage reads, for a synthetic-data run of seed 42; returns how to write verdict.json."""
    monkeypatch.chdir(tmp_path)
    for path, content in {"reports/evaluate/metrics.json": EVALUATION.to_json(),
                          "reports/explain/metrics.json": EXPLANATION.to_json(),
                          "data/cifar10/meta.json": {"source": {"kind": "synthetic"}, "sha256": {"all": "d"}},
                          "reports/verdict/verdict.json": {"config_sha": None, "seeds": 0}}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(json.dumps(content))
    return lambda verdict: (tmp_path / "reports/verdict/verdict.json").write_text(json.dumps(verdict.to_json()))


def write_explain(root, params: Params) -> None:
    """An explain metrics file that names every model of `params` (the report refuses one that does not)."""
    (root / "reports/explain/metrics.json").write_text(json.dumps(
        {name: {"deletion_auc": 0.1} for name in params.models} | {"layer": "block3", "samples": 10}))


def page_of(params: Params, **shas) -> str:
    """The page of the files page_inputs wrote, as run_report builds it."""
    return build_report("seed: 42\n", params, StageResults.load(list(params.models)), **shas)


def section(page: str, heading: str) -> str:
    return page[page.index(f"<h2>{heading}</h2>"):].split("</section>")[0]


def test_without_a_verdict_the_run_is_one_training_run_not_a_verdict_on_named_data(page_inputs):
    page = page_of(Params(), config_sha="abc")
    assert "<h1>seecam: CNN vs SE on synthetic data</h1>" in page and "CIFAR-10-format" not in page
    one = section(page, "One training run (seed 42): not a verdict")
    assert "<strong>" not in one and 'class="verdict"' not in page  # no bold claim from one run
    assert "seecam sweep --seeds 0-2 --run -j 2" in one
    assert "Verdict across seeds" not in page


def test_with_a_verdict_across_seeds_it_is_the_one_answer_on_the_page(page_inputs):
    result = three_seeds("abc")
    page_inputs(result)
    page = page_of(Params(), config_sha="abc")
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[:2] == ["Verdict across seeds", "One training run (seed 42)"]
    assert f"<strong>{result.plain}.</strong>" in section(page, "Verdict across seeds")
    one = section(page, "One training run (seed 42)")
    assert "<strong>" not in one and "The verdict above pools 3 other seeds of this configuration (0, 1, 2)" in one
    assert page.count('class="verdict"') == 1


def test_a_verdict_for_another_configuration_is_named_with_how_to_show_it(page_inputs):
    page_inputs(three_seeds("fff"))
    page = page_of(Params(), config_sha="abc")
    assert "Verdict across seeds" not in page
    note = section(page, "One training run (seed 42): not a verdict")
    assert "A verdict across 3 seeds exists for another configuration (config_sha <code>fff</code>" in note
    assert ("<code>dvc exp apply seed-0-abc123</code>, <code>seecam verdict</code> again (the apply restores the "
            "experiment's reports/), then <code>dvc repro report</code>") in note


def test_a_bound_that_rounds_to_zero_is_never_minus_zero():
    """The single-run interval printed as "CI [-0.00, +2.90]": a tiny negative bound rounds to 0.00, unsigned."""
    evaluation = with_comparison(EVALUATION, acc_diff_ci_low=-1e-17, acc_diff_ci_high=0.029)
    text = single_run(evaluation, "cnn", "se")
    assert "CI [0.00, +2.90]" in text and "-0.00" not in text


def test_provenance_names_the_pages_commit_and_the_commit_that_trained_each_model(page_inputs, tmp_path, monkeypatch):
    """Issue 26: the page showed the report-time commit, MLflow the training commit, and neither said which."""
    import mlflow

    from seecam.tracking.store import RunInfo

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("seecam", artifact_location=(tmp_path / "art").as_uri())
    for name, commit in (("cnn", "1111111"), ("se", "2222222")):
        run = client.create_run(experiment, tags={"git_commit": commit, "model": name})
        RunInfo(run.info.run_id, experiment, "seecam", uri).save(tmp_path / f"reports/train/{name}/run.json")
    page = provenance("seed: 42\n", "cpu", ["cnn", "se"])
    assert re.search(r"<td[^>]*>git commit of this page \(report stage\)</td><td[^>]*>unknown</td>", page)
    for name, commit in (("cnn", "1111111"), ("se", "2222222")):
        assert re.search(rf"<td[^>]*>git commit that trained {name} \(tag of its MLflow run\)</td><td[^>]*>{commit}<",
                         page), name


def test_a_verdict_that_pooled_another_network_of_a_model_is_not_this_pages_answer(page_inputs):
    """Same config_sha, but se here is another network (models are not in config_sha): named, not shown on top."""
    page_inputs(replace(three_seeds("abc"), model_shas={"cnn": "c1", "se": "s-r8"}))
    page = page_of(Params(), config_sha="abc", model_shas={"cnn": "c1", "se": "s-r16"})
    assert "Verdict across seeds" not in page
    note = section(page, "One training run (seed 42): not a verdict")
    assert "se here is model_sha <code>s-r16</code>, the verdict pooled model_sha <code>s-r8</code>" in note
    same = page_of(Params(), config_sha="abc", model_shas={"cnn": "c1", "se": "s-r8"})
    assert "Verdict across seeds" in same


def test_missing_records_are_one_line_naming_what_writes_them():
    line = missing_line([("cnn", "explain"), ("se", "explain")])
    assert line.startswith("warning: MLflow has no record of this workspace's configuration for cnn's explain record, "
                           "se's explain record (DVC's run cache restored")
    assert line.endswith("`dvc repro -f -s explain` writes them") and "\n" not in line
    lost = missing_line([("cnn", "training"), ("se", "evaluate")])
    assert "cnn's training run, se's evaluate record" in lost
    assert lost.endswith("`dvc repro -f -s train_cnn && dvc repro -f -s evaluate && dvc repro` writes them")


def test_a_third_model_joins_every_table_and_the_verdict_stays_the_pages_answer(page_inputs, tmp_path):
    """Issue 25: adding se8 orphaned the verdict and left se8 out of the "se − cnn" and "better" columns."""
    params = parse_params({"models": {"cnn": {"kind": "cnn"}, "se": {"kind": "se"},
                                      "se8": {"kind": "se", "reduction": 8}}})
    evaluation = with_models(EVALUATION, se8=EVALUATION.models["se"] | {"test_acc": 0.79})
    evaluation = replace(evaluation, comparison=evaluation.comparison | {"se8": comparison(-0.01, -0.02, 0.0, 0.2)})
    (tmp_path / "reports/evaluate/metrics.json").write_text(json.dumps(evaluation.to_json()))
    write_explain(tmp_path, params)
    page_inputs(replace(three_seeds("abc"), model_shas={"cnn": "c1", "se": "s1"}))
    page = page_of(params, config_sha="abc", model_shas={"cnn": "c1", "se": "s1", "se8": "s8"})
    assert re.findall(r"<h2>(.*?)</h2>", page)[:2] == ["Verdict across seeds", "One training run (seed 42)"]
    assert "<h1>seecam: CNN vs SE vs SE8 on synthetic data</h1>" in page
    one = section(page, "One training run (seed 42)")
    assert "SE − CNN = +2.00 points" in one and "SE8 − CNN = -1.00 points" in one
    assert "<th>se8 − cnn</th><th>better</th>" in section(page, "Metrics")
    assert "<th>metric</th><th>cnn</th><th>se</th><th>se8</th><th>better when</th>" in page  # faithfulness


def test_without_a_verdict_the_page_names_the_verdict_of_each_candidate(page_inputs, tmp_path):
    """With several candidates a bare `seecam verdict` asks which one: the page's command names each."""
    params = parse_params({"models": {"cnn": {"kind": "cnn"}, "se": {"kind": "se"}, "eca": {"kind": "eca"}}})
    evaluation = with_comparison(with_models(EVALUATION, eca=EVALUATION.models["se"]), "eca")
    (tmp_path / "reports/evaluate/metrics.json").write_text(json.dumps(evaluation.to_json()))
    write_explain(tmp_path, params)
    one = section(page_of(params, config_sha="abc"), "One training run (seed 42): not a verdict")
    assert ("then <code>seecam verdict --candidate se</code> (and <code>--candidate eca</code>), then "
            "<code>dvc repro report</code>") in one
    two = section(page_of(Params(), config_sha="abc"), "One training run (seed 42): not a verdict")
    assert "then <code>seecam verdict</code>, then <code>dvc repro report</code>" in two
