"""A foreign, torn or incomplete checkpoint file never crashes a resume (its key: tests/unit/test_identity.py);
a finished training's record is reused only under its own key and number of epochs."""

import pickle

import pytest
import torch

from helpers import RunsCodeOnLoad
from seecam.checkpoint import FINISHED_KEYS, REQUIRED_KEYS, finish, load_checkpoint, load_finished, read_checkpoint


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


def test_a_finished_training_keeps_weights_history_and_run_and_is_reused_only_by_the_same_key_and_epochs(tmp_path):
    path, finished = tmp_path / "cnn-0123456789abcdef.ckpt", tmp_path / "cnn-0123456789abcdef-3.done"
    state = {key: [key] for key in REQUIRED_KEYS} | {"epoch": 3, "fingerprint": "key"}
    torch.save(state, path)
    finish(path, finished)
    assert not path.exists() and torch.load(finished, weights_only=True).keys() == FINISHED_KEYS  # no optimiser
    assert load_finished(finished, "key", 3)["run_id"] == ["run_id"]
    assert load_finished(finished, "other key", 3) is None and load_finished(finished, "key", 4) is None
    assert load_finished(tmp_path / "cnn-none-3.done", "key", 3) is None


def test_a_checkpoint_that_would_run_code_is_refused_in_seecams_words(tmp_path, capfd):
    path = tmp_path / "cnn-0123456789abcdef.ckpt"
    path.write_bytes(pickle.dumps({"epoch": RunsCodeOnLoad()}))
    assert read_checkpoint(path) is None
    out, err = capfd.readouterr()
    assert err == f"checkpoint {path} is unreadable (it holds objects seecam will not load); starting fresh\n"
    assert "code ran" not in out
