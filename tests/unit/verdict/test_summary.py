"""The verdict's numbers and sentences from paired seeds (no MLflow)."""

from dataclasses import replace

import pytest

from seecam.verdict.record import ModelRun, Pair
from seecam.verdict.render import markdown
from seecam.verdict.summary import summarize
from verdict_runs import SHA


def test_constant_difference_without_per_image_vectors():
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.6)) for s in (0, 1)]
    result = summarize(pairs, "cnn", "se", SHA)
    assert result.sentence == "SE better" and result.cohens_dz is None and result.power is None
    assert result.pooled_images.skipped


def test_per_class_intervals_stay_within_the_seeds_differences():
    """Three seeds whose per-class differences spread widely: a t interval would reach about ±110 points."""
    def run(model, seed, acc, cat):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc, "test_acc/cat": cat})

    pairs = [Pair(s, run("cnn", s, 0.5, 0.5), run("se", s, 0.5, 0.5 + d)) for s, d in enumerate([0.3, -0.4, 0.5])]
    cat = summarize(pairs, "cnn", "se", SHA).per_class_diff["cat"]
    assert (cat.low, cat.high, cat.coverage, cat.resolved()) == (-0.4, 0.5, 0.75, False)
    assert cat.median == pytest.approx(0.3)


@pytest.mark.parametrize(("diffs", "plain"), [
    ([0.01, -0.02, 0.03], "SE won 2 of 3 seeds; not enough to tell; about 114 seeds would"),
    ([-0.01, -0.02, 0.01], "CNN won 2 of 3 seeds; not enough to tell; about 44 seeds would"),
    ([0.02, 0.03, 0.025], "SE won 3 of 3 seeds, by 2.50 points on average, more than the seeds vary: SE is better"),
    ([0.01, 0.0, -0.01], "SE won 1 of 3 seeds, CNN 1, 1 tied; the seeds show no difference to tell"),
])
def test_one_plain_sentence_a_non_statistician_can_act_on(diffs, plain):
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.5 + d)) for s, d in enumerate(diffs)]
    result = summarize(pairs, "cnn", "se", SHA)
    assert result.plain == plain
    text = markdown(replace(result, mlflow_run_id="r"))
    first = [line for line in text.splitlines() if line.strip()][1]
    assert plain in first and "interval" not in first and "power" not in first  # plain words first
    assert text.index(plain) < text.index("Cohen's d_z")
