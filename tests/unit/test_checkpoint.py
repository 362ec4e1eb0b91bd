"""A foreign, torn or incomplete checkpoint file never crashes a resume (its key: tests/unit/test_identity.py)."""

import pickle

import pytest
import torch

from helpers import RunsCodeOnLoad
from seecam.checkpoint import load_checkpoint, read_checkpoint


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


def test_a_checkpoint_that_would_run_code_is_refused_in_seecams_words(tmp_path, capfd):
    path = tmp_path / "cnn-0123456789abcdef.ckpt"
    path.write_bytes(pickle.dumps({"epoch": RunsCodeOnLoad()}))
    assert read_checkpoint(path) is None
    out, err = capfd.readouterr()
    assert err == f"checkpoint {path} is unreadable (it holds objects seecam will not load); starting fresh\n"
    assert "code ran" not in out
