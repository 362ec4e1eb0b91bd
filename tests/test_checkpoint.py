"""Checkpoints are keyed by params, data, device and code, and a foreign file never crashes a resume."""

import pytest
import torch
import yaml

from conftest import REPO
from seecam.checkpoint import fingerprint, load_checkpoint, read_checkpoint
from seecam.code_version import code_digest, code_files
from seecam.params import Params

CPU = torch.device("cpu")


def test_code_files_are_the_py_deps_of_the_training_stage():
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train_se"]["deps"]
    files = code_files("train_se", REPO / "dvc.yaml")
    assert {p.relative_to(REPO).as_posix() for p in files} == {d for d in deps if d.endswith(".py")}
    assert REPO / "src/seecam/augment.py" in files and REPO / "stages/train.py" in files


def test_any_code_change_changes_the_fingerprint(tmp_path):
    code = tmp_path / "augment.py"
    code.write_text("def apply(x):\n    return x\n")
    before = fingerprint("cnn", Params(), "data", CPU, code_digest([code]))
    code.write_text("def apply(x):\n    return 0 * x\n")
    after = fingerprint("cnn", Params(), "data", CPU, code_digest([code]))
    assert before != after
    assert after == fingerprint("cnn", Params(), "data", CPU, code_digest([code]))


@pytest.mark.parametrize("content", [[1, 2, 3], {"epoch": 3}, torch.zeros(2), "text"],
                         ids=["list", "dict-lacking-keys", "tensor", "string"])
def test_a_valid_torch_file_that_is_no_checkpoint_is_unreadable_not_a_crash(tmp_path, capsys, content):
    path = tmp_path / "cnn-0123456789abcdef.ckpt"
    torch.save(content, path)
    assert load_checkpoint(path, "key", 5) == (None, [])
    assert f"checkpoint {path} is unreadable (not a seecam checkpoint); starting fresh" in capsys.readouterr().err


def test_a_torn_file_is_unreadable(tmp_path, capsys):
    path = tmp_path / "cnn-0123456789abcdef.ckpt"
    path.write_bytes(b"PK\x03\x04 torn")
    assert read_checkpoint(path) is None
    assert "is unreadable (" in capsys.readouterr().err
