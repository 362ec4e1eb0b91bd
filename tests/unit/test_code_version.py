"""The training code digest is the train stages' own code: any edit to it counts, evaluate's helpers do not."""

import shutil

import yaml

from helpers import REPO
from seecam.code_version import code_digest, code_files, training_code_digest


def test_code_files_are_the_py_deps_of_the_training_stage():
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train_se"]["deps"]
    files = code_files("train_se", REPO / "dvc.yaml")
    assert {p.relative_to(REPO).as_posix() for p in files} == {d for d in deps if d.endswith(".py")}
    assert REPO / "src/seecam/augment.py" in files and REPO / "stages/train.py" in files


def test_any_code_change_changes_the_digest(tmp_path):
    code = tmp_path / "augment.py"
    code.write_text("def apply(x):\n    return x\n")
    before = code_digest([code])
    code.write_text("def apply(x):\n    return 0 * x\n")
    assert code_digest([code]) != before
    assert code_digest([code]) == code_digest([code])


def copy_code(destination):
    shutil.copy(REPO / "dvc.yaml", destination)
    for folder in ("src", "stages"):
        shutil.copytree(REPO / folder, destination / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return destination / "dvc.yaml"


def test_the_training_digest_follows_training_code_and_not_the_later_stages_tracking(tmp_path):
    """Editing a helper only evaluate, explain, report or the verdict use keeps checkpoints and seed pooling."""
    pipeline = copy_code(tmp_path)
    before = training_code_digest(pipeline)
    for later in ("tracking/stages.py", "verdict.py", "evaluate.py"):
        path = tmp_path / "src/seecam" / later
        path.write_text(path.read_text() + "\n# an evaluate-only edit\n")
    assert training_code_digest(pipeline) == before
    lifecycle = tmp_path / "src/seecam/tracking/training.py"
    lifecycle.write_text(lifecycle.read_text() + "\n# a training edit\n")
    assert training_code_digest(pipeline) != before


def test_the_training_digest_is_the_same_from_the_repo_and_from_elsewhere(tmp_path, monkeypatch):
    """`seecam sweep` digests the code by the repo's path, a stage from inside the repo: the same digest."""
    pipeline = copy_code(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert training_code_digest() == training_code_digest(pipeline) == training_code_digest(REPO / "dvc.yaml")
