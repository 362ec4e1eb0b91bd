"""verdict.md says what the verdict's numbers are (no MLflow)."""

from dataclasses import replace

import pytest

from seecam.verdict.record import ModelRun, Pair
from seecam.verdict.render import markdown
from seecam.verdict.summary import summarize
from verdict_runs import SHA


@pytest.mark.parametrize(("seeds", "coverage"), [(3, "75%"), (4, "88%"), (6, "97%")])
def test_verdict_md_states_the_coverage_of_the_seed_count_it_shows(seeds, coverage):
    """Its note once said "(3 seeds: 75%)" above a 4-seed table whose column showed 88%."""
    def run(model, seed, acc):
        return ModelRun(f"{model}{seed}", model, seed, {"test_acc": acc, "test_acc/cat": acc})

    pairs = [Pair(s, run("cnn", s, 0.5), run("se", s, 0.5 + 0.01 * (s - 1))) for s in range(seeds)]
    text = markdown(replace(summarize(pairs, "cnn", "se", SHA), mlflow_run_id="r"))
    assert f"with {seeds} seeds it is {coverage}" in text
    assert "| cat | " in text and f"| {coverage} |" in text  # the table's column says the same
