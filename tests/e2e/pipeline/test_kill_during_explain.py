"""A real SIGKILL (os.killpg on the whole process group) while explain writes its figures: the next `dvc repro`
completes and leaves no temp, `.part` or `.old` file (the download's kills: test_kill_leftovers.py).

It kills explain in a copy of the trained pipeline, so only explain and the report run again.
"""

from helpers import VENV_BIN, assert_repro_completes_clean, kill_when


def test_kill_during_explain_figures_then_repro_completes_clean(trained_copy):
    trained_copy.set_params(explain__faithfulness_samples=12)  # explain is stale, as after an edit
    figures = trained_copy.root / "reports/explain"
    kill_when(trained_copy, [str(VENV_BIN / "python"), "stages/explain.py"],
              lambda: any(figures.glob(".*.png.*.tmp")))
    assert list(figures.glob(".*.png.*.tmp"))  # the kill hit a figure write: its temp file is left
    assert_repro_completes_clean(trained_copy)
