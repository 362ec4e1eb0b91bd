"""Training on CUDA: compiled (CUDA graphs) == eager, bf16 autocast, the partial last batch, resume, no per-step
host sync. Skipped with a reason where no GPU is visible; run on the lent GPU machine (../shared/gpu/README.md).
"""

import copy
import warnings
from dataclasses import replace

import pytest
import torch
from torch._dynamo.utils import counters

from seecam.data.synthetic import make_synthetic
from seecam.history import EpochRow
from seecam.inference import to_device
from seecam.models import build_model
from seecam.params import CnnParams, TrainParams
from seecam.training_loop import AUGMENT_CHUNK, FitConfig, FitResult, TrainSplits, evaluate_split, fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU; run on the lent GPU machine (../shared/gpu/README.md)")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def synthetic_splits() -> TrainSplits:
    data = make_synthetic(2100, 200, seed=0)
    return TrainSplits(to_device(data.train.images, CUDA), torch.from_numpy(data.train.labels).to(CUDA),
                       to_device(data.test.images, CUDA), torch.from_numpy(data.test.labels).to(CUDA), "val")


@pytest.fixture
def no_tf32():
    """Full fp32 arithmetic, so compiled and eager differ only by the order of float32 sums."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def tiny_fit(splits: TrainSplits, images: int = 16 * 4 + 5, epochs: int = 2, dropout: float = 0.5,
             batch_size: int = 16, resume=None, on_epoch=lambda row, state: None, **train) -> FitResult:
    """A 1-block CNN; by default 4 full batches of 16 and a partial batch of 5 per epoch."""
    torch.manual_seed(0)
    model = build_model("cnn", CnnParams(channels=[4], hidden=8, dropout=dropout))
    small = TrainSplits(splits.train_x[:images], splits.train_y[:images], splits.val_x, splits.val_y, "val")
    params = replace(TrainParams(), epochs=epochs, batch_size=batch_size, **train)
    return fit(model, small, FitConfig(params, 0, CUDA), resume=resume, on_epoch=on_epoch)


def losses(history: list[EpochRow]) -> list[tuple[float, float]]:
    return [(row.train_loss, row.val_loss) for row in history]


def test_the_compiled_step_with_cuda_graphs_equals_eager(synthetic_splits, fresh_dynamo, no_tf32):
    # fp32 and no dropout: what is left to differ is inductor's order of float32 sums (the CPU test's 1e-4)
    eager = tiny_fit(synthetic_splits, dropout=0.0, compile=False, precision="fp32")
    compiled = tiny_fit(synthetic_splits, dropout=0.0, compile=True, precision="fp32")
    for e, c in zip(losses(eager.history), losses(compiled.history), strict=True):
        assert c == pytest.approx(e, rel=1e-4)
    assert compiled.compile_seconds > 0 == eager.compile_seconds


def test_a_partial_last_batch_runs_eagerly_beside_one_static_cuda_graph(synthetic_splits, fresh_dynamo):
    result = tiny_fit(synthetic_splits, compile=True)
    assert counters["stats"]["unique_graphs"] == 1
    assert torch.isfinite(torch.tensor(losses(result.history))).all()


def test_bf16_autocast_trains_as_well_as_fp32_and_evaluates_in_fp32(synthetic_splits):
    last = {}
    for precision in ("bf16", "fp32"):
        torch.manual_seed(0)
        model = build_model("cnn", CnnParams())
        result = fit(model, synthetic_splits, FitConfig(replace(TrainParams(), epochs=3, precision=precision), 0, CUDA))
        last[precision] = result.history[-1]
        loss, acc = evaluate_split(model, synthetic_splits.val_x, synthetic_splits.val_y)
        assert (loss, acc) == pytest.approx((last[precision].val_loss, last[precision].val_acc))
    assert last["bf16"].val_acc > 0.3  # chance is 0.1 (CPU, fp32: 0.41 after 3 epochs)
    assert last["bf16"].val_acc == pytest.approx(last["fp32"].val_acc, abs=0.15)


def test_a_resumed_run_ends_where_the_uninterrupted_one_does(synthetic_splits):
    states = []
    full = tiny_fit(synthetic_splits, epochs=3, on_epoch=lambda row, state: states.append(copy.deepcopy(state)))
    assert states[0]["rng"][0]["cuda"], "the checkpoint keeps CUDA's RNG (dropout masks) for the resume"
    torch.cuda.manual_seed(123)  # as in a fresh process: the resume must restore the RNG itself
    resumed = tiny_fit(synthetic_splits, epochs=3, resume=states[0])
    assert [row.epoch for row in resumed.history] == [1, 2, 3]
    # cuDNN's backward sums in a nondeterministic order: equal within float rounding, not bit for bit
    for r, f in zip(losses(resumed.history), losses(full.history), strict=True):
        assert r == pytest.approx(f, rel=1e-3)


def test_the_host_waits_for_the_device_once_per_epoch_not_once_per_step(synthetic_splits):
    """Syncs counted by CUDA's sync debug mode: the same for an epoch of 2 and of 8 augmentation chunks."""
    def syncs(images: int) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                tiny_fit(synthetic_splits, images=images, epochs=1, batch_size=64)
            finally:
                torch.cuda.set_sync_debug_mode(0)
        return sum("synchroniz" in str(w.message) for w in caught)

    tiny_fit(synthetic_splits, epochs=1, batch_size=64)  # warm up (cuDNN plans, allocator)
    assert syncs(2 * AUGMENT_CHUNK) == syncs(8 * AUGMENT_CHUNK)
