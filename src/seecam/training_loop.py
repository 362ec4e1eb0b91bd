"""The training loop: on-device data, batched augmentation, Adam + ReduceLROnPlateau.

Speed comes from keeping the host out of the loop: the uint8 images live on
the training device, batches are index gathers, augmentation is batched
tensor ops, and losses and hit counts accumulate on the device, read back
once per epoch (no per-step `.item()`). On CUDA the step runs in bf16
autocast (`train.precision`) with channels_last; `train.compile` (compiling.py) decides whether
full batches run a `torch.compile`d model.
With `train.processes` > 1 each torchrun rank trains its shard of the epoch and rank 0 alone writes
(distributed.py); one process never touches torch.distributed, so its numbers are what they were.
The train stage (train.py) runs this loop inside its MLflow run and writes the outputs; benchmarks and tests
run it alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from tqdm import tqdm

from seecam import compiling, distributed
from seecam.allocator import keep_freed_memory
from seecam.augment import Augmenter
from seecam.data.splits import train_val_indices
from seecam.data.store import Dataset
from seecam.distributed import SINGLE, World
from seecam.errors import SeecamError
from seecam.history import EpochRow
from seecam.inference import predict_logits, to_device
from seecam.params import DataParams, TrainParams, resolved_precision

AUGMENT_CHUNK = 256
MEMORY_FORMAT = torch.channels_last  # measured faster on CPU too (mkldnn)

OnStart = Callable[[dict[str, Any]], None]  # sees TrainState.state_dict() before the first epoch this fit runs
OnEpoch = Callable[[EpochRow, dict[str, Any]], None]  # sees each epoch's row, then the state after it


@dataclass
class TrainSplits:
    """uint8 NCHW images and int64 labels on the training device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    scheduled_on: str  # "val", or "test" for the tutorial protocol (data.val_size = 0)


@dataclass(frozen=True)
class FitConfig:
    """What the loop needs besides the model, its data and the state it resumes: one run's settings."""

    train: TrainParams
    seed: int
    device: torch.device
    label: str = "train"  # names the run in its log lines
    world: World = SINGLE
    decision: compiling.Decision | None = None  # the caller's, already logged (compile_decision); None: fit's own


@dataclass
class FitResult:
    history: list[EpochRow] = field(default_factory=list)
    iterations: list[dict[str, float]] = field(default_factory=list)  # history.ITERATION_COLUMNS, one per step
    compile_seconds: float = 0.0  # the first compiled step's seconds (compiling happens there); 0 when eager


@dataclass
class TrainState:
    """Everything a resume restores, in one object: weights, optimiser, LR schedule, the data-order generator,
    every rank's own random streams (dropout, augmentation) and the history so far. `state_dict()` is the
    checkpoint's payload (checkpoint.Checkpoint names its fields).

    One process draws everything from `seed`: the data order and augmentation from `generator`, dropout from
    the global generator seed_everything seeded (today's numbers). Under DDP the data order stays one stream
    all ranks draw alike, while each rank seeds its dropout and augmentation from (seed, rank)
    (distributed.rank_seeds); `state_dict()` gathers every rank's streams and `load_state_dict` gives each rank
    its own back, so a resume continues each rank exactly.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    generator: torch.Generator  # the data order, the same on every rank
    augment: torch.Generator  # this rank's augmentation draws: `generator` itself in one process
    world: World = SINGLE
    result: FitResult = field(default_factory=FitResult)
    epoch: int = 0  # epochs completed

    @classmethod
    def fresh(cls, model: torch.nn.Module, config: FitConfig) -> TrainState:
        """Adam and ReduceLROnPlateau as the tutorial sets them; the data order seeded on its own generator."""
        train, device, world = config.train, config.device, config.world
        optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, weight_decay=train.weight_decay,
                                     fused=device.type in ("cuda", "cpu"))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=train.lr_factor, patience=train.lr_patience)
        order = torch.Generator(device).manual_seed(config.seed)
        if world.size == 1:
            return cls(model, optimizer, scheduler, order, order, world)
        dropout, augment = distributed.rank_seeds(config.seed, world)
        torch.manual_seed(dropout)  # after the weights were initialised alike on every rank
        return cls(model, optimizer, scheduler, order, torch.Generator(device).manual_seed(augment), world)

    def _streams(self) -> dict[str, Any]:
        """This rank's own random state: dropout's (global CPU and CUDA generators) and augmentation's."""
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "augment": None if self.augment is self.generator else self.augment.get_state()}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's payload, plain values and tensors; under DDP a collective (every rank's streams are
        gathered)."""
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "rng": distributed.gather(self._streams(), self.world),  # rank r's streams at index r
            "history": [asdict(row) for row in self.result.history],
            "iterations": list(self.result.iterations),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        mine = state["rng"][self.world.rank]  # the key holds train.processes: a resume has the same ranks
        torch.set_rng_state(mine["torch"])
        if mine["cuda"]:
            torch.cuda.set_rng_state_all(mine["cuda"])
        if mine["augment"] is not None:
            self.augment.set_state(mine["augment"])
        self.result.history = [EpochRow(**row) for row in state["history"]]
        self.result.iterations = list(state["iterations"])
        self.epoch = int(state["epoch"])

    def record(self, row: EpochRow, losses: list[float]) -> None:
        """Complete epoch `row.epoch`: its row, and one iteration per step with that step's loss."""
        first_step = len(self.result.iterations)
        self.result.history.append(row)
        self.result.iterations += [{"step": first_step + i + 1, "epoch": row.epoch, "loss": loss}
                                   for i, loss in enumerate(losses)]
        self.epoch = row.epoch


def training_splits(dataset: Dataset, data: DataParams, device: torch.device) -> TrainSplits:
    """Hold out `data.val_size` stratified train images, drawn by `data.split_seed`; use `data.subset` of the rest.

    The split is not drawn by `seed`: every seed of a configuration trains and validates on the same images, so
    the seeds' spread is training noise alone. Both sizes were checked against the source's train images when
    params were loaded (DataParams).
    """
    labels = dataset.train.labels
    train_idx, val_idx = train_val_indices(labels, data.val_size, data.subset, data.split_seed)
    if data.val_size:
        val_images, val_labels, scheduled_on = dataset.train.images[val_idx], labels[val_idx], "val"
    else:
        val_images, val_labels, scheduled_on = dataset.test.images, dataset.test.labels, "test"
    # Train images NCHW-contiguous: the augmentation's gathers and colour ops ran ~20% slower on to_device's
    # channels_last strides (its output is made channels_last for the model); validation stays channels_last.
    return TrainSplits(
        to_device(dataset.train.images[train_idx], device).contiguous(), torch.from_numpy(labels[train_idx]).to(device),
        to_device(val_images, device), torch.from_numpy(np.asarray(val_labels)).to(device), scheduled_on,
    )


def seed_everything(seed: int) -> None:
    """Seed the global generators (dropout, init); data order has its own generator."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def fit(
    model: torch.nn.Module,
    splits: TrainSplits,
    config: FitConfig,
    *,
    resume: dict[str, Any] | None = None,
    on_start: OnStart = lambda state: None,
    on_epoch: OnEpoch = lambda row, state: None,
) -> FitResult:
    """Train for `config.train.epochs` from `resume` (a TrainState.state_dict()) or from scratch.

    `on_start(state)` sees the state before the first epoch this call runs (epoch 0 when fresh), so a kill
    before the first epoch ends still has a checkpoint to resume from; `on_epoch(row, state)` runs after each.
    Under DDP (`world.size > 1`) each rank trains on its shard with its own dropout and augmentation streams
    (TrainState); the row holds the sums over all ranks and the validation metrics rank 0 alone computes, so
    every rank gets the same row and LR schedule.
    """
    keep_freed_memory()  # each step reuses the last one's pages, no page faults (allocator.py has figures)
    model.to(config.device, memory_format=MEMORY_FORMAT)
    state = TrainState.fresh(model, config)
    if resume:
        state.load_state_dict(resume)
    epochs = _Epochs.prepare(state, splits, config)
    on_start(state.state_dict())
    for epoch in range(state.epoch + 1, config.train.epochs + 1):
        row, losses = epochs.run(epoch)
        state.record(row, losses)
        # A terminal gets a live bar within each epoch; then, there as in a log, each finished epoch leaves one
        # line (the bar clears itself, and a finished epoch that left nothing on screen looked like no progress).
        if config.world.is_main:
            print(_summary(config.label, row, config.train.epochs), file=sys.stderr, flush=True)
        on_epoch(row, state.state_dict())
    if isinstance(epochs.step, compiling.FallbackStep):
        state.result.compile_seconds = epochs.step.compile_seconds
    return state.result


@dataclass(frozen=True)
class _Epochs:
    """What every epoch of one fit uses, and the parts of an epoch in the order they run."""

    state: TrainState
    splits: TrainSplits
    config: FitConfig
    augment: Augmenter
    step: compiling.Step
    batch_size: int  # this rank's
    chunk: int  # images augmented per call: several batches, since per-op overhead dominates at batch 64 on a CPU

    @classmethod
    def prepare(cls, state: TrainState, splits: TrainSplits, config: FitConfig) -> _Epochs:
        """Augmenter, batch sizes and the training step, compiled or not as the (printed) decision says."""
        augment = Augmenter(config.train.augment, config.device, state.model.normalization)  # the model file's
        batch_size = distributed.rank_batch_size(config.train, config.world)
        decision = config.decision or compile_decision(config.train, len(splits.train_y), config.device)
        if config.world.is_main:
            print(decision.line(config.label), flush=True)
        model = distributed.wrap(state.model, config.world, config.train.sync_batchnorm)
        step = _make_step(model, state.optimizer, config.device, decision.compiled, batch_size,
                          uses_bf16(config.train.precision, config.device))
        return cls(state, splits, config, augment, step, batch_size,
                   batch_size * max(1, AUGMENT_CHUNK // batch_size))

    def run(self, epoch: int) -> tuple[EpochRow, list[float]]:
        """Train this rank's shard, total it over the ranks, validate, step the LR schedule: the epoch's row
        and each step's loss (its mean over the ranks)."""
        began = time.perf_counter()
        lr = self.state.optimizer.param_groups[0]["lr"]
        losses, hits, images = self._train(epoch)
        # Collectives from here on: every rank calls each one, in this order, once per epoch (a rank that skipped
        # one would hang the others); DDP's gradient all-reduce runs inside each step's backward.
        train_loss, train_acc, losses = self._over_ranks(losses, hits, images)
        _stop_if_not_finite(losses, epoch, self.config.label, len(losses))
        val_loss, val_acc = self._validate()
        self.state.scheduler.step(val_loss)
        row = EpochRow(epoch, train_loss, train_acc, val_loss, val_acc, lr, time.perf_counter() - began)
        return row, losses.tolist()

    def _train(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One pass over this rank's shard in the epoch's order: each step's loss and the hit count, on the device
        (no host sync), and the number of images."""
        model, splits, device, world = self.state.model, self.splits, self.config.device, self.config.world
        model.train()
        order = distributed.shard(torch.randperm(len(splits.train_y), generator=self.state.generator, device=device),
                                  world)
        steps = -(-len(order) // self.batch_size)
        losses = torch.empty(steps, device=device)
        hits = torch.zeros((), device=device, dtype=torch.int64)
        bar = tqdm(total=steps, desc=f"{self.config.label} {epoch}/{self.config.train.epochs}", leave=False,
                   disable=not (world.is_main and sys.stderr.isatty()))
        i = 0
        for first in range(0, len(order), self.chunk):
            index = order[first:first + self.chunk]
            images = self.augment(splits.train_x[index], self.state.augment).contiguous(memory_format=MEMORY_FORMAT)
            for x, y in zip(images.split(self.batch_size), splits.train_y[index].split(self.batch_size), strict=True):
                losses[i], correct = self.step(x, y)
                hits += correct
                i += 1
                bar.update()
        bar.close()
        return losses, hits, len(order)

    def _over_ranks(self, losses: torch.Tensor, hits: torch.Tensor, images: int) -> tuple[float, float, torch.Tensor]:
        """Training loss and accuracy over every rank's images, and each step's loss as its mean over the ranks."""
        world = self.config.world
        steps = len(losses)
        sizes = torch.full((steps,), float(self.batch_size), device=losses.device)
        sizes[-1] = images - self.batch_size * (steps - 1)
        loss_sum, seen, hits = distributed.sum_over_ranks(
            torch.stack([(losses * sizes).sum(), sizes.sum(), hits.to(losses.dtype)]), world)
        step_losses = distributed.sum_over_ranks(losses, world) / world.size
        return float(loss_sum / seen), float(hits) / float(seen), step_losses

    def _validate(self) -> tuple[float, float]:
        """Validation loss and accuracy: once, on rank 0 (every rank holds the same weights and buffers after
        sync_buffers), then shared."""
        model, world = self.state.model, self.config.world
        distributed.sync_buffers(model, world)
        validated = evaluate_split(model, self.splits.val_x, self.splits.val_y) if world.is_main else None
        return distributed.from_main(validated, world)


def compile_decision(train: TrainParams, images: int, device: torch.device) -> compiling.Decision:
    """What `train.compile` means for `train.epochs` over `images` on `device` (printed by fit, logged by the stage)."""
    return compiling.decide(train.compile, device.type, images, train.batch_size, train.epochs,
                            compiling.toolchain_problem(device.type))


def _summary(label: str, row: EpochRow, epochs: int) -> str:
    return (f"{label} epoch {row.epoch}/{epochs}: train_loss {row.train_loss:.4f} "
            f"train_acc {row.train_acc:.4f} val_loss {row.val_loss:.4f} val_acc {row.val_acc:.4f} "
            f"lr {row.lr:.3g} {row.epoch_seconds:.1f}s")


def uses_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast for the training step (params.resolved_precision); evaluation always runs in fp32."""
    return resolved_precision(precision, device.type) == "bf16"


def _make_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device, compiled: bool, batch_size: int,
    bf16: bool = False,
) -> compiling.Step:
    """The training step; when `compiled`, full batches run the compiled model and a partial batch eagerly."""
    eager = _step_through(model, optimizer, device, bf16)
    if not compiled:
        return eager
    fast = _step_through(compiling.compile_model(model, device.type), optimizer, device, bf16)

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return fast(x, y) if len(x) == batch_size else eager(x, y)

    return compiling.FallbackStep(step, eager, model)


def _step_through(
    forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer, device: torch.device,
    bf16: bool,
) -> compiling.Step:

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # A new CUDA-graph generation per step (a no-op without CUDA graphs): the caller copies this step's
        # loss and hit count into its own tensors before the next replay overwrites the graph's outputs.
        torch.compiler.cudagraph_mark_step_begin()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = forward(x)
            loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        return loss.detach(), (logits.argmax(1) == y).sum()

    return step


def evaluate_split(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy, no augmentation."""
    logits = predict_logits(model, images)
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


def _stop_if_not_finite(losses: torch.Tensor, epoch: int, label: str, steps: int) -> None:
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise SeecamError(
            f"{label}: loss became {losses[i].item()} at epoch {epoch}, step {i + 1} of {steps}; "
            "lower train.lr or check the data", exit_code=1,
        )
