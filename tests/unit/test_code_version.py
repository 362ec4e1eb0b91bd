"""The training code digest is the train stages' own behaviour: any statement, constant or default counts;
comments, docstrings, formatting and evaluate's helpers do not."""

import shutil

import pytest
import yaml

from helpers import REPO
from seecam.code_version import code_digest, code_files, training_code_digest
from seecam.errors import SeecamError


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


BEHAVIOUR = '''"""A module docstring."""

def apply(x, scale=2):
    """Scale x."""
    # why: the tutorial scales by two
    return x * scale
'''


@pytest.mark.parametrize("edit", [
    lambda s: s.replace('"""A module docstring."""', '"""Another docstring, reworded."""'),
    lambda s: s.replace('"""Scale x."""', '"""Scale x by `scale`: a longer docstring\n    over two lines."""'),
    lambda s: s.replace("# why: the tutorial scales by two", "# a new comment"),
    lambda s: s.replace("    return x * scale", "    return (x\n            * scale)  # reformatted"),
    lambda s: s.replace("def apply(x, scale=2):", "\n\ndef apply(x,   scale = 2):"),
], ids=["module docstring", "function docstring", "comment", "line breaks", "blank lines and spaces"])
def test_comments_docstrings_and_formatting_change_no_digest(tmp_path, edit):
    code = tmp_path / "augment.py"
    code.write_text(BEHAVIOUR)
    before = code_digest([code], tmp_path)
    code.write_text(edit(BEHAVIOUR))
    assert code_digest([code], tmp_path) == before


@pytest.mark.parametrize("edit", [
    lambda s: s.replace("scale=2", "scale=3"),
    lambda s: s.replace("x * scale", "x + scale"),
    lambda s: s.replace("    return x * scale", "    x = x.clone()\n    return x * scale"),
    lambda s: s.replace('"""Scale x."""', '"""Scale x."""\n    "a bare string after the docstring"'),
], ids=["default", "operator", "statement", "a string that is no docstring"])
def test_any_statement_constant_or_default_changes_the_digest(tmp_path, edit):
    code = tmp_path / "augment.py"
    code.write_text(BEHAVIOUR)
    before = code_digest([code], tmp_path)
    code.write_text(edit(BEHAVIOUR))
    assert code_digest([code], tmp_path) != before


def test_code_that_does_not_parse_is_one_line(tmp_path):
    code = tmp_path / "augment.py"
    code.write_text("def apply(x):\n    return x *\n")
    with pytest.raises(SeecamError, match=r"augment.py: not valid Python \(line 2\)") as error:
        code_digest([code], tmp_path)
    assert "\n" not in str(error.value)


def copy_code(destination):
    shutil.copy(REPO / "dvc.yaml", destination)
    for folder in ("src", "stages"):
        shutil.copytree(REPO / folder, destination / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return destination / "dvc.yaml"


def test_the_training_digest_follows_training_code_and_not_the_later_stages_tracking(tmp_path):
    """Editing a helper only evaluate, explain, report or the verdict use keeps checkpoints and seed pooling."""
    pipeline = copy_code(tmp_path)
    before = training_code_digest(["cnn", "se"], pipeline)
    for later in ("tracking/stages.py", "verdict/pooling.py", "evaluate.py"):
        path = tmp_path / "src/seecam" / later
        path.write_text(path.read_text() + "\nLATER_ONLY = 1  # an evaluate-only statement\n")
    assert training_code_digest(["cnn", "se"], pipeline) == before
    lifecycle = tmp_path / "src/seecam/tracking/training.py"
    lifecycle.write_text(lifecycle.read_text() + "\nSTEP = 1  # a training edit\n")
    assert training_code_digest(["cnn", "se"], pipeline) != before


def test_every_train_stage_runs_the_same_code_so_the_models_of_a_configuration_share_the_digest():
    """Issue 25: a model's training digests its own stage's code; the stages share one list of deps, so each model
    gets the digest of all (config_sha pools them), and a model's stage added or missing changes no other's."""
    pipeline = REPO / "dvc.yaml"
    one = training_code_digest(["cnn"], pipeline)
    assert one == training_code_digest(["se"], pipeline) == training_code_digest(["cnn", "se"], pipeline)


def test_the_training_digest_is_the_same_from_the_repo_and_from_elsewhere(tmp_path, monkeypatch):
    """`seecam sweep` digests the code by the repo's path, a stage from inside the repo: the same digest."""
    pipeline = copy_code(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert training_code_digest(["cnn"]) == training_code_digest(["cnn"], pipeline) == training_code_digest(
        ["cnn"], REPO / "dvc.yaml")
