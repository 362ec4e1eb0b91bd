import copy
from dataclasses import replace

import pytest
import torch

from seecam.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from seecam.data.store import attach_meta
from seecam.data.synthetic import make_synthetic
from seecam.errors import SeecamError
from seecam.models import build_model
from seecam.params import parse_params
from seecam.training_loop import FitConfig, fit, seed_everything, training_splits, uses_bf16

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dataset():
    return attach_meta(make_synthetic(3000, 300, seed=0), {"kind": "synthetic"})


def params(**train):
    return parse_params({"data": {"source": "synthetic", "val_size": 500,
                                  "synthetic": {"train_size": 3000, "test_size": 300}}, "train": train})


def train(dataset, name="cnn", resume=None, on_epoch=lambda row, state: None, subset=0, **train_params):
    p = params(**train_params)
    p = replace(p, data=replace(p.data, subset=subset))
    seed_everything(p.seed)
    model = build_model(name, p.model(name), p.train.normalize)
    splits = training_splits(dataset, p.data, CPU)
    return model, fit(model, splits, FitConfig(p.train, p.seed, CPU), resume=resume, on_epoch=on_epoch)


def metrics(history):
    return [replace(row, epoch_seconds=0.0) for row in history]


def test_se_learns_synthetic_data_far_above_chance(dataset):
    _, result = train(dataset, "se", epochs=4)
    assert result.history[-1].val_acc > 0.5, result.history  # chance is 0.1
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_same_seed_same_metrics_and_resume_equals_uninterrupted(dataset, tmp_path):
    states = []
    def keep(row, state):
        states.append(copy.deepcopy(state))

    full_model, full = train(dataset, epochs=3, subset=600, on_epoch=keep)
    again_model, again = train(dataset, epochs=3, subset=600)
    assert metrics(full.history) == metrics(again.history)
    assert full.iterations == again.iterations
    # through the checkpoint file the stage writes, and its safe load
    path = tmp_path / "cnn-0123456789abcdef.ckpt"
    save_checkpoint(path, Checkpoint.of(states[0], "key", "run"))
    saved = read_checkpoint(path)
    assert (saved.fingerprint, saved.run_id, saved.epoch, saved.history) == ("key", "run", 1, states[0]["history"])
    resumed_model, resumed = train(dataset, epochs=3, subset=600, resume=saved.training_state())
    assert metrics(resumed.history) == metrics(full.history)
    for key, value in full_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[key]), key
    assert [row["step"] for row in resumed.iterations] == list(range(1, len(full.iterations) + 1))


def test_iteration_and_history_shapes(dataset):
    _, result = train(dataset, epochs=2, subset=200, batch_size=64)
    assert [row.epoch for row in result.history] == [1, 2]
    assert len(result.iterations) == 2 * 4  # 200 images = 3 full batches of 64 + one of 8
    assert [row["epoch"] for row in result.iterations] == [1] * 4 + [2] * 4


def test_exploding_loss_stops_with_epoch_and_step(dataset):
    with pytest.raises(SeecamError, match=r"loss became (nan|inf) at epoch 1, step \d+ of 4; lower train.lr"):
        train(dataset, epochs=1, subset=200, lr=1e30)


def test_lr_follows_reduce_on_plateau_of_the_validation_loss(dataset):
    _, result = train(dataset, epochs=6, subset=100, lr_patience=0, lr_factor=0.5)
    reference = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(reference, factor=0.5, patience=0)
    for row in result.history:
        assert row.lr == reference.param_groups[0]["lr"]
        plateau.step(row.val_loss)
    assert result.history[-1].lr < 1e-3  # this seed does hit a plateau


def test_the_validation_split_is_drawn_by_split_seed_alone(dataset):
    """Seeds measure training noise only: every seed of a configuration trains and validates on the same images."""
    seed_1, seed_2, other_split = (parse_params({"seed": seed, "data": {"source": "synthetic", "val_size": 500,
                                                                        "split_seed": split, "synthetic": {
                                                                            "train_size": 3000}}})
                                   for seed, split in ((1, 0), (2, 0), (1, 1)))
    first, second, third = (training_splits(dataset, p.data, CPU) for p in (seed_1, seed_2, other_split))
    assert torch.equal(first.val_x, second.val_x) and torch.equal(first.train_y, second.train_y)
    assert not torch.equal(first.val_x, third.val_x)


def test_val_size_zero_schedules_on_test(dataset):
    p = parse_params({"data": {"source": "synthetic", "val_size": 0, "synthetic": {"train_size": 3000}}})
    splits = training_splits(dataset, p.data, CPU)
    assert splits.scheduled_on == "test" and len(splits.val_y) == 300 and len(splits.train_y) == 3000


def test_without_a_tty_each_epoch_prints_one_summary_line(dataset, capsys):
    _, result = train(dataset, epochs=2, subset=200)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train epoch ")]
    assert len(lines) == 2, lines
    assert lines[1].startswith("train epoch 2/2: train_loss ")
    for key in ("train_acc", "val_loss", "val_acc", "lr"):
        assert f" {key} " in lines[1]
    assert lines[1].endswith("s")


def test_tutorial_normalisation_is_what_training_feeds_the_model(dataset):
    """Same seed, only train.normalize differs: the trained model records it and training saw other inputs."""
    tutorial, tutorial_result = train(dataset, epochs=1, subset=500, normalize="tutorial")
    _, cifar10_result = train(dataset, epochs=1, subset=500)
    assert tutorial.normalization == "tutorial"
    assert metrics(tutorial_result.history) != metrics(cifar10_result.history)


@pytest.mark.parametrize(("precision", "device", "bf16"), [
    ("auto", "cuda", True), ("auto", "cpu", False), ("auto", "mps", False),
    ("fp32", "cuda", False), ("bf16", "cpu", True), ("bf16", "cuda", True),
])
def test_precision_auto_is_bf16_on_cuda_only_and_fp32_is_the_tutorials(precision, device, bf16):
    assert uses_bf16(precision, torch.device(device)) is bf16
    assert parse_params({"train": {"precision": precision}}).train.precision == precision


def test_precision_bf16_trains_under_autocast_and_an_unknown_value_is_refused(dataset):
    _, fp32 = train(dataset, epochs=1, subset=200, precision="fp32")
    _, bf16 = train(dataset, epochs=1, subset=200, precision="bf16")
    assert fp32.history[0].train_loss != bf16.history[0].train_loss  # bf16 rounds the step differently
    assert bf16.history[0].train_loss == pytest.approx(fp32.history[0].train_loss, rel=0.05)
    with pytest.raises(SeecamError, match="train.precision"):
        parse_params({"train": {"precision": "fp16"}})


def test_on_a_terminal_each_epoch_shows_a_live_bar_then_leaves_its_summary_line(tmp_path):
    """Issue 26: on a terminal the per-epoch bar cleared itself at the epoch's end and nothing stayed: a finished
    epoch left no line, as if nothing had happened. Run in a real pseudo-terminal 120 columns wide."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    script = ("import torch; from seecam.data.store import attach_meta; from seecam.data.synthetic import "
              "make_synthetic; from seecam.models import build_model; from seecam.params import parse_params; "
              "from seecam.training_loop import FitConfig, fit, training_splits\n"
              "p = parse_params({'data': {'source': 'synthetic', 'val_size': 50, 'synthetic': {'train_size': 306, "
              "'test_size': 50}}, 'train': {'epochs': 2, 'batch_size': 32}})\n"
              "d = attach_meta(make_synthetic(306, 50, seed=0), {'kind': 'synthetic'})\n"
              "fit(build_model('cnn', p.model('cnn')), training_splits(d, p.data, torch.device('cpu')), "
              "FitConfig(p.train, 0, torch.device('cpu')))\n")
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=terminal, env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)})
    os.close(terminal)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal's other end closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=120) == 0, seen.decode(errors="replace")[-2000:]
    text = seen.decode(errors="replace")
    assert "train 1/2:" in text and "%|" in text and "it/s" in text  # the live bar, within the epoch
    shown = [line.split("\r")[-1] for line in text.replace("\r\n", "\n").split("\n")]  # what stays on screen
    for epoch in (1, 2):
        assert any(line.startswith(f"train epoch {epoch}/2: train_loss ") for line in shown), text[-2000:]
