"""The pipeline's paths: products where dvc.yaml declares them, scratch state outside every product.

(tests/project/test_pipeline.py checks each train stage's outs against paths.train_outputs.)
"""

from pathlib import Path

import pytest
import yaml

from helpers import REPO
from seecam import paths

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
OUTPUTS = {Path(next(iter(entry)) if isinstance(entry, dict) else entry): stage
           for stage, spec in STAGES.items() for kind in ("outs", "metrics") for entry in spec.get(kind, [])}


@pytest.mark.parametrize(("path", "stage"), [
    (paths.DATA_DIR, "download"),
    (paths.DATA_CHECKS, "download"),
    (paths.model_file("se"), "train_se"),
    (paths.EVALUATE_DIR / "metrics.json", "evaluate"),
    (paths.EXPLAIN_DIR / "metrics.json", "explain"),
    (paths.REPORT_HTML, "report"),
])
def test_each_product_is_an_output_of_the_stage_that_writes_it(path, stage):
    assert OUTPUTS.get(path) == stage, path


def test_the_verdict_is_no_stages_output_but_the_reports_input():
    """`seecam verdict` writes it outside DVC's stages; the report reruns when it changes."""
    verdict = paths.VERDICT_DIR / "verdict.json"
    assert verdict not in OUTPUTS and str(verdict) in STAGES["report"]["deps"]


@pytest.mark.parametrize("scratch", [paths.CHECKPOINTS_DIR, paths.RAW_DIR])
def test_scratch_state_is_inside_no_output_so_dvc_never_deletes_it(scratch):
    """DVC deletes a stage's outputs before it runs it: a checkpoint or a downloaded archive in one would go."""
    assert all(scratch != out and out not in scratch.parents and scratch not in out.parents for out in OUTPUTS)


def test_scratch_state_stays_out_of_git_and_dvc():
    gitignored = (REPO / ".gitignore").read_text().splitlines()
    assert f"/{paths.CHECKPOINTS_DIR}/" in gitignored and f"/{paths.RAW_DIR}/" in gitignored
    assert f"{paths.CHECKPOINTS_DIR}/" in (REPO / ".dvcignore").read_text().splitlines()


def test_every_path_is_relative_to_the_repo_root_where_dvc_runs_stages():
    fixed = [value for value in vars(paths).values() if isinstance(value, Path)]
    made = [paths.model_file("m"), paths.train_dir("m"), paths.checkpoint_file("m", "f"),
            paths.finished_file("m", "f", 1)]
    assert fixed and not any(path.is_absolute() for path in fixed + made)


def test_a_checkpoint_is_named_by_its_model_and_the_first_16_digits_of_its_key():
    key = "0123456789abcdef" + "9" * 48
    assert paths.checkpoint_file("se", key) == Path("checkpoints/se-0123456789abcdef.ckpt")
    assert paths.checkpoint_file("se", key) == paths.checkpoint_file("se", key[:16] + "0" * 48)
    assert paths.checkpoint_file("cnn", key) != paths.checkpoint_file("se", key)


def test_a_finished_training_is_kept_per_length_so_a_longer_run_never_overwrites_a_shorter_ones():
    key = "a" * 64
    assert paths.finished_file("se", key, 50) == Path(f"checkpoints/se-{'a' * 16}-50.done")
    assert paths.finished_file("se", key, 50) != paths.finished_file("se", key, 3)
