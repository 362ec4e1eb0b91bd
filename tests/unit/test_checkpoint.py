"""A foreign, torn or incomplete checkpoint file never crashes a resume (its key: tests/unit/test_identity.py);
a finished training's record is reused only under its own key and number of epochs; the lock says which run is
live."""

import pickle
from dataclasses import fields

import pytest
import torch

from helpers import RunsCodeOnLoad
from seecam.checkpoint import (
    Checkpoint,
    Finished,
    claim,
    discard_stale,
    finish,
    load_checkpoint,
    load_finished,
    read_checkpoint,
    save_checkpoint,
)
from seecam.errors import SeecamError


def checkpoint(epoch: int = 3, fingerprint: str = "key", run_id: str = "run") -> Checkpoint:
    """A checkpoint whose every other field holds its own name, so a test sees which fields a file kept."""
    names = {field.name for field in fields(Checkpoint)} - {"epoch", "fingerprint", "run_id"}
    return Checkpoint(epoch=epoch, fingerprint=fingerprint, run_id=run_id, **{name: [name] for name in names})


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


def test_a_checkpoint_resumes_only_under_its_key_and_within_the_epochs(tmp_path, capsys):
    path = tmp_path / "cnn-0123456789abcdef.ckpt"
    save_checkpoint(path, checkpoint(epoch=3))
    assert load_checkpoint(path, "key", 3) == (checkpoint(epoch=3), [])
    assert load_checkpoint(path, "key", 2) == (None, ["run"])  # nothing will resume its run
    assert load_checkpoint(path, "other key", 3) == (None, ["run"])
    assert "is at epoch 3 > train.epochs=2; starting fresh" in capsys.readouterr().err


def test_a_finished_training_keeps_weights_history_and_run_and_is_reused_only_by_the_same_key_and_epochs(tmp_path):
    path, finished = tmp_path / "cnn-0123456789abcdef.ckpt", tmp_path / "cnn-0123456789abcdef-3.done"
    save_checkpoint(path, checkpoint(epoch=3))
    finish(path, finished)
    kept = {"epoch", "fingerprint", "run_id", "model", "history", "iterations"}  # no optimiser, no random state
    assert not path.exists() and torch.load(finished, weights_only=True).keys() == kept
    assert load_finished(finished, "key", 3) == Finished("key", "run", 3, ["model"], ["history"], ["iterations"])
    assert load_finished(finished, "other key", 3) is None and load_finished(finished, "key", 4) is None
    assert load_finished(tmp_path / "cnn-none-3.done", "key", 3) is None


def test_a_checkpoint_that_would_run_code_is_refused_in_seecams_words(tmp_path, capfd):
    path = tmp_path / "cnn-0123456789abcdef.ckpt"
    path.write_bytes(pickle.dumps({"epoch": RunsCodeOnLoad()}))
    assert read_checkpoint(path) is None
    out, err = capfd.readouterr()
    assert err == f"checkpoint {path} is unreadable (it holds objects seecam will not load); starting fresh\n"
    assert "code ran" not in out


def test_a_claimed_checkpoint_is_live_another_claim_is_refused_and_its_lock_goes_with_it(tmp_path):
    path = tmp_path / "cnn-0123456789abcdef.ckpt"
    refused = pytest.raises(SeecamError, match="another process is training with the same params, data and code")
    with claim(path):
        with refused, claim(path):
            pass
        save_checkpoint(path, checkpoint())
    assert path.with_suffix(".lock").exists()  # the checkpoint stays, and so does its lock
    path.unlink()
    with claim(path):
        pass
    assert not path.with_suffix(".lock").exists()  # no checkpoint (finished or reused): no lock left behind


def test_stale_checkpoints_are_discarded_unless_a_live_run_holds_them(tmp_path):
    mine, stale, live = (tmp_path / f"cnn-{key}.ckpt" for key in ("mine", "stale", "live"))
    for path, run_id in ((stale, "stale run"), (live, "live run")):
        save_checkpoint(path, checkpoint(run_id=run_id))
    with claim(live):
        assert discard_stale(mine) == ["stale run"]
    assert not stale.exists() and not stale.with_suffix(".lock").exists() and live.exists()
