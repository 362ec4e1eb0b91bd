"""train.compile: the auto decision, the static full-batch graph, the eager fallback, compiled == eager."""

from dataclasses import replace

import pytest
import torch
from torch._dynamo.utils import counters

from seecam import compiling
from seecam.errors import SeecamError
from seecam.models import build_model
from seecam.params import SeParams, TrainParams, parse_params
from seecam.training_loop import FitConfig, TrainSplits, fit

CPU = torch.device("cpu")
FULL_RUN = 45_000  # default data: 50,000 train images minus data.val_size 5,000


@pytest.mark.parametrize(("setting", "device", "images", "batch", "epochs", "problem", "compiled"), [
    ("auto", "cpu", FULL_RUN, 64, 50, None, False),  # a compiled CPU step is no faster on the stage's path
    ("auto", "cpu", 600, 64, 1, None, False),
    ("auto", "cpu", FULL_RUN, 64, 50, "no C++ compiler", False),
    ("auto", "mps", FULL_RUN, 64, 50, "inductor is not used on mps", False),
    ("auto", "cuda", FULL_RUN, 64, 50, None, True),
    ("auto", "cuda", FULL_RUN, 64, 10, None, False),
    (True, "cpu", 600, 64, 1, None, True),  # true forces, even for a tiny run
    (True, "cpu", 600, 64, 1, "no C++ compiler", True),  # ... and a failure then falls back (test below)
    (False, "cpu", FULL_RUN, 64, 50, None, False),
])
def test_auto_compiles_only_when_the_saving_pays_for_the_compile(setting, device, images, batch, epochs, problem,
                                                                 compiled):
    decision = compiling.decide(setting, device, images, batch, epochs, problem)
    assert decision.compiled is compiled, decision.reason
    assert decision.line("se").startswith(f"se: compile {'on' if compiled else 'off'} (")
    assert decision.mlflow_params()["compiled"] == str(compiled).lower()
    if problem and setting == "auto":
        assert problem in decision.reason


def test_the_default_full_run_says_why_it_compiles_or_not():
    assert compiling.decide("auto", "cpu", FULL_RUN, 64, 50, None).reason == (
        "auto: a compiled step is no faster on cpu (measured)")
    # By the module docstring's formula, by hand: 45,000 / 64 = 703.1, so 704 batches an epoch, 35,200 in 50
    # epochs; at 4 ms a step that is 140.8 s eager (~2 min), and a 3x faster compiled step saves two thirds of
    # it, 93.9 s (~94 s), more than 1.5 x the 40 s compile: it pays.
    assert compiling.decide("auto", "cuda", FULL_RUN, 64, 50, None).reason == (
        "auto: 35,200 steps, ~2 min eager; compile ~40 s pays for itself (saves ~94 s)")


# Where auto starts to compile on CUDA, by hand: the saving, steps x 4 ms x (1 - 1/3), reaches 1.5 x 40 s = 60 s
# at 22,500 steps of batch 64 (float rounding decides that very step, so the cases are one step either side).
# A batch of 128 costs twice a batch of 64, so it pays at half the steps.
@pytest.mark.parametrize(("images", "batch", "compiled"), [
    (22_501 * 64, 64, True),
    (22_499 * 64, 64, False),
    (11_251 * 128, 128, True),
    (11_249 * 128, 128, False),
    (22_500 * 64 + 1, 64, True),  # a partial last batch is a step too: 22,501 steps
])
def test_auto_compiles_on_cuda_from_the_step_count_where_the_saving_is_one_and_a_half_compiles(images, batch,
                                                                                                compiled):
    assert compiling.decide("auto", "cuda", images, batch, 1, None).compiled is compiled


def test_cpu_toolchain_is_found_here_and_mps_never_compiles():
    assert compiling.toolchain_problem("cpu") is None  # g++ is installed on this machine and in CI
    assert compiling.toolchain_problem("mps") == "inductor is not used on mps"


def test_cuda_replays_cuda_graphs_and_every_device_keeps_eager_dropout():
    assert compiling.inductor_options("cuda") == {"fallback_random": True, "triton.cudagraphs": True}
    assert compiling.inductor_options("cpu") == {"fallback_random": True}


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), (True, True), (False, False)])
def test_params_accept_auto_and_bools(value, expected):
    assert parse_params({"train": {"compile": value}}).train.compile == expected
    assert TrainParams().compile == "auto"


@pytest.mark.parametrize("value", ["yes", 1, 0])
def test_params_refuse_other_compile_values(value):
    with pytest.raises(SeecamError, match="compile"):
        parse_params({"train": {"compile": value}})


def tiny_splits(images: int) -> TrainSplits:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 10, (images,), generator=generator)
    return TrainSplits(x, y, x[:32], y[:32], "val")


def tiny_fit(compile_setting, images: int = 16 * 4 + 5, epochs: int = 2):
    """A 1-block SE model (fast to compile) over 4 full batches of 16 and a partial batch of 5 per epoch.

    SE holds every layer of the CNN and the SE block's own autograd Functions (models.py), which dynamo must
    trace into the one graph too: a graph break there would leave a GPU run half eager.
    """
    torch.manual_seed(0)
    model = build_model("se", SeParams(channels=[8], hidden=8, reduction=4))
    train = replace(TrainParams(), epochs=epochs, batch_size=16, compile=compile_setting)
    return fit(model, tiny_splits(images), FitConfig(train, 0, CPU))


def test_an_epoch_with_a_partial_last_batch_compiles_exactly_one_static_graph(fresh_dynamo):
    # Before: the partial batch recompiled with a dynamic batch dimension, and the full batches of every later
    # epoch then ran that slower dynamic graph (TORCH_LOGS=recompiles showed "size mismatch at index 0").
    tiny_fit(True, epochs=2)
    assert counters["stats"]["unique_graphs"] == 1


def test_a_compiled_run_equals_the_eager_run_within_float_rounding(fresh_dynamo):
    # Inductor fuses and reorders float32 arithmetic (~1e-6 relative per op); dropout masks are the eager ones
    # (fallback_random), so two epochs of Adam stay within 1e-4 relative. A wrong graph (stale BatchNorm
    # statistics, other dropout masks, a skipped partial batch) moves these losses by more than 1e-2.
    eager_run, compiled_run = tiny_fit(False), tiny_fit(True)
    eager, compiled = eager_run.history, compiled_run.history
    # the first compiled step (where compiling happens) is timed for the stage log; eager has none
    assert eager_run.compile_seconds == 0 < compiled_run.compile_seconds < compiled[0].epoch_seconds
    for e, c in zip(eager, compiled, strict=True):
        for key in ("train_loss", "val_loss"):
            assert getattr(c, key) == pytest.approx(getattr(e, key), rel=1e-4), (key, e, c)


def test_a_compiler_failure_warns_once_and_trains_exactly_like_eager(fresh_dynamo, monkeypatch, capsys):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no kernels today")

    monkeypatch.setattr(compiling, "compile_model",
                        lambda model, device_type: torch.compile(model, dynamic=False, backend=broken_backend))
    failed = tiny_fit(True).history
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no kernels today" in warnings[0], warnings
    eager = tiny_fit(False).history
    # the failed attempt's forward pass is undone (BatchNorm statistics, dropout RNG): same numbers as eager
    assert [replace(row, epoch_seconds=0.0) for row in failed] == [replace(row, epoch_seconds=0.0) for row in eager]
