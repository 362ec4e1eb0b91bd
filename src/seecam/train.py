"""The training loop: on-device data, batched augmentation, Adam + ReduceLROnPlateau.

Speed comes from keeping the host out of the loop: the uint8 images live on
the training device, batches are index gathers, augmentation is batched
tensor ops, and losses and hit counts accumulate on the device, read back
once per epoch (no per-step `.item()`). On CUDA the step runs in bf16
autocast (`train.precision`) with channels_last; `train.compile` (compiling.py) decides whether
full batches run a `torch.compile`d model.
With `train.processes` > 1 each torchrun rank trains its shard of the epoch and rank 0 alone writes
(distributed.py); one process never touches torch.distributed, so its numbers are what they were.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from tqdm import tqdm

from seecam import checkpoint, compiling, distributed, paths
from seecam.allocator import keep_freed_memory
from seecam.atomic import write_csv
from seecam.augment import Augmenter
from seecam.code_version import training_code_digest
from seecam.credentials import masked
from seecam.data.splits import train_val_indices
from seecam.data.store import Dataset
from seecam.distributed import SINGLE, World
from seecam.errors import SeecamError
from seecam.history import write_history
from seecam.identity import Environment, checkpoint_key, config_sha, model_sha
from seecam.inference import predict_logits, save_model, to_device
from seecam.models import build_model, count_parameters, model_config
from seecam.normalize import Normalizer
from seecam.params import DataParams, Params, TrainParams, resolved_precision
from seecam.plots import close
from seecam.plots.training import training_curves
from seecam.preflight import check_writable
from seecam.stage_clock import StageClock
from seecam.tracking import store
from seecam.tracking.store import RunInfo
from seecam.tracking.training import (
    TrainingRun,
    finished_model_uri,
    mark_killed,
    run_params,
    run_tags,
    training_run,
)

AUGMENT_CHUNK = 256


@dataclass
class TrainSplits:
    """uint8 NCHW images and int64 labels on the training device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    scheduled_on: str  # "val", or "test" for the tutorial protocol (data.val_size = 0)


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    iterations: list[dict[str, float]] = field(default_factory=list)
    compile_seconds: float = 0.0  # the first compiled step's seconds (compiling happens there); 0 when eager


@dataclass
class TrainState:
    """Everything a resume restores, in one object: weights, optimiser, LR schedule, the data-order generator,
    every rank's own random streams (dropout, augmentation) and the history so far. `state_dict()` is the
    checkpoint's payload.

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
    def fresh(cls, model: torch.nn.Module, train: TrainParams, seed: int, device: torch.device,
              world: World = SINGLE) -> TrainState:
        """Adam and ReduceLROnPlateau as the tutorial sets them; the data order seeded on its own generator."""
        optimizer = torch.optim.Adam(model.parameters(), lr=train.lr, weight_decay=train.weight_decay,
                                     fused=device.type in ("cuda", "cpu"))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=train.lr_factor, patience=train.lr_patience)
        order = torch.Generator(device).manual_seed(seed)
        if world.size == 1:
            return cls(model, optimizer, scheduler, order, order, world)
        dropout, augment = distributed.rank_seeds(seed, world)
        torch.manual_seed(dropout)  # after the weights were initialised alike on every rank
        return cls(model, optimizer, scheduler, order, torch.Generator(device).manual_seed(augment), world)

    def _streams(self) -> dict[str, Any]:
        """This rank's own random state: dropout's (global CPU and CUDA generators) and augmentation's."""
        return {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "augment": None if self.augment is self.generator else self.augment.get_state()}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's payload; under DDP a collective (every rank's streams are gathered)."""
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "rng": distributed.gather(self._streams(), self.world),  # rank r's streams at index r
            "history": list(self.result.history),
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
        self.result.history = list(state["history"])
        self.result.iterations = list(state["iterations"])
        self.epoch = int(state["epoch"])


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
    train: TrainParams,
    *,
    seed: int,
    device: torch.device,
    resume: dict[str, Any] | None = None,
    on_start: Callable[[dict[str, Any]], None] = lambda state: None,
    on_epoch: Callable[[dict[str, float], dict[str, Any]], None] = lambda row, state: None,
    label: str = "train",
    world: World = SINGLE,
    decision: compiling.Decision | None = None,
) -> FitResult:
    """Train for `train.epochs`, calling `on_epoch(history_row, checkpoint_state)` after each.

    `on_start(checkpoint_state)` sees the state before the first epoch this call runs (epoch 0 when fresh),
    so a kill before the first epoch ends still has a checkpoint to resume from. `decision` is the compile
    decision the caller already made and logged (compile_decision), so one run decides once.
    Under DDP (`world.size > 1`) each rank trains on its shard with its own dropout and augmentation streams
    (TrainState); the history row holds the sums over all ranks and the validation metrics rank 0 alone
    computes, so every rank gets the same row and LR schedule.
    """
    keep_freed_memory()  # each step reuses the last one's pages, no page faults (allocator.py has figures)
    memory_format = torch.channels_last  # measured faster on CPU too (mkldnn)
    model.to(device, memory_format=memory_format)
    state = TrainState.fresh(model, train, seed, device, world)
    if resume:
        state.load_state_dict(resume)
    optimizer, scheduler, generator, result = state.optimizer, state.scheduler, state.generator, state.result
    augment = Augmenter(train.augment, device, model.normalization)  # the normaliser the model file records
    # Augment several batches per call: per-op overhead dominates at batch 64 on a CPU.
    batch_size = distributed.rank_batch_size(train, world)
    chunk = batch_size * max(1, AUGMENT_CHUNK // batch_size)
    decision = decision or compile_decision(train, len(splits.train_y), device)
    if world.is_main:
        print(decision.line(label), flush=True)
    step = _make_step(distributed.wrap(model, world, train.sync_batchnorm), optimizer, device, decision.compiled,
                      batch_size, uses_bf16(train.precision, device))
    on_start(state.state_dict())
    # A terminal gets a live bar within each epoch; then, there as in a log, each finished epoch leaves one line
    # (the bar clears itself, and a finished epoch that left nothing on screen looked like no progress at all).

    for epoch in range(state.epoch + 1, train.epochs + 1):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        order = distributed.shard(torch.randperm(len(splits.train_y), generator=generator, device=device), world)
        steps = -(-len(order) // batch_size)
        losses = torch.empty(steps, device=device)
        hits = torch.zeros((), device=device, dtype=torch.int64)
        bar = tqdm(total=steps, desc=f"{label} {epoch}/{train.epochs}", leave=False,
                   disable=not (world.is_main and sys.stderr.isatty()))
        i = 0
        for first in range(0, len(order), chunk):
            index = order[first:first + chunk]
            images = augment(splits.train_x[index], state.augment).contiguous(memory_format=memory_format)
            for x, y in zip(images.split(batch_size), splits.train_y[index].split(batch_size), strict=True):
                losses[i], correct = step(x, y)
                hits += correct
                i += 1
                bar.update()
        bar.close()
        sizes = torch.full((steps,), float(batch_size), device=device)
        sizes[-1] = len(order) - batch_size * (steps - 1)
        # Collectives below: every rank calls each one, in this order, once per epoch (a rank that skipped
        # one would hang the others); DDP's gradient all-reduce runs inside each step's backward.
        loss_sum, seen, hits = distributed.sum_over_ranks(
            torch.stack([(losses * sizes).sum(), sizes.sum(), hits.to(losses.dtype)]), world)
        losses = distributed.sum_over_ranks(losses, world) / world.size  # each step's mean over the ranks
        _stop_if_not_finite(losses, epoch, label, steps)
        distributed.sync_buffers(model, world)
        # once, on rank 0 (every rank holds the same weights and buffers now), then shared
        validated = evaluate_split(model, splits.val_x, splits.val_y) if world.is_main else None
        val_loss, val_acc = distributed.from_main(validated, world)
        scheduler.step(val_loss)
        row = {
            "epoch": epoch, "train_loss": float(loss_sum / seen),
            "train_acc": float(hits) / float(seen), "val_loss": val_loss, "val_acc": val_acc,
            "lr": lr, "epoch_seconds": time.perf_counter() - began,
        }
        first_step = len(result.iterations)
        result.history.append(row)
        result.iterations += [{"step": first_step + i + 1, "epoch": epoch, "loss": v}
                              for i, v in enumerate(losses.tolist())]
        if world.is_main:
            print(_summary(label, row, train.epochs), file=sys.stderr, flush=True)
        state.epoch = epoch
        on_epoch(row, state.state_dict())
    if isinstance(step, compiling.FallbackStep):
        result.compile_seconds = step.compile_seconds
    return result


def compile_decision(train: TrainParams, images: int, device: torch.device) -> compiling.Decision:
    """What `train.compile` means for `train.epochs` over `images` on `device` (printed by fit, logged by the stage)."""
    return compiling.decide(train.compile, device.type, images, train.batch_size, train.epochs,
                            compiling.toolchain_problem(device.type))


def _summary(label: str, row: dict[str, float], epochs: int) -> str:
    return (f"{label} epoch {row['epoch']}/{epochs}: train_loss {row['train_loss']:.4f} "
            f"train_acc {row['train_acc']:.4f} val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.4f} "
            f"lr {row['lr']:.3g} {row['epoch_seconds']:.1f}s")


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


@dataclass
class TrainingJob:
    """One train stage's inputs, decided once: what to train, on what, where, whether compiled, which code."""

    name: str
    params: Params
    dataset: Dataset
    device: torch.device
    splits: TrainSplits
    model: torch.nn.Module
    decision: compiling.Decision
    world: World
    clock: StageClock
    env: Environment  # the code, data and machine beside params.yaml (identity.py)

    @property
    def key(self) -> str:
        """The checkpoint key: a checkpoint is resumed, or a finished training reused, only under it."""
        return checkpoint_key(self.name, self.params, self.env, self.decision.compiled)

    def fit(self, resume: dict[str, Any] | None, **hooks: Callable) -> FitResult:
        return fit(self.model, self.splits, self.params.train, seed=self.params.seed, device=self.device,
                   resume=resume, label=self.name, world=self.world, decision=self.decision, **hooks)

    def run_info(self, run_id: str, experiment_id: str, uri: str, model_uri: str) -> RunInfo:
        """What run.json records: the run, and the identities the report matches a verdict against."""
        return RunInfo(run_id, experiment_id, self.params.tracking.experiment, masked(uri), model_uri,
                       config_sha(self.params, self.env), model_sha(self.name, self.params))


REUSED = "reused"  # rank 0's word to the other ranks that a finished training is reused: nothing to train


def run_train(name: str, params: Params, dataset: Dataset, device: torch.device,
              world: World = SINGLE, clock: StageClock | None = None) -> RunInfo | None:
    """The whole train_<name> stage: reuse, resume or start, log to MLflow, write the model and reports.

    `clock` (started by the stage script before its imports) ends the log with where the time went.

    Once everything is written and logged, the last checkpoint becomes the training's finished record
    (checkpoint.finish: weights, history and run id, not the optimiser). A rerun of the same identity finds it
    (_reuse): DVC reruns the stage when a comment in its code changed the deps' bytes, or on `dvc repro -f`, and
    the stage then trains no epoch, rewrites the same outputs and keeps the same FINISHED MLflow run. That is
    honest because the key holds everything that shapes the numbers (identity.py) and, on a CPU, the same
    inputs give the same numbers (tested); to train again from scratch, delete checkpoints/<name>-*.done.
    A run killed or stopped by a dead tracking server resumes from its checkpoint instead. The finished
    record is written last, after run.json and after the run is FINISHED, and every step of the epilogue can
    be repeated (the model already logged is reused): a stop anywhere after the last epoch leaves the final
    checkpoint, and the rerun resumes at the last epoch, trains nothing and finishes the same run.
    Under DDP only rank 0 does all that; the other ranks train from rank 0's checkpoint and return None.
    """
    clock = clock or StageClock()
    if world.is_main:
        check_writable(paths.train_outputs(name))
        experiment_id = store.open_experiment(params.tracking)  # fails fast if the server is down
    splits = training_splits(dataset, params.data, device)
    seed_everything(params.seed)
    model = build_model(name, params.model(name), params.train.normalize)
    job = TrainingJob(name, params, dataset, device, splits, model,
                      compile_decision(params.train, len(splits.train_y), device), world, clock,
                      Environment(training_code_digest([name]), dataset.sha256, device.type, torch.__version__))
    if not world.is_main:
        resume = distributed.from_main(None, world)  # pairs with rank 0's from_main below
        if resume != REUSED:
            job.fit(resume)
        return None
    uri = store.tracking_uri(params.tracking)
    print(f"{name}: {count_parameters(model):,} parameters, {len(splits.train_y)} training images, "
          f"LR scheduled on {splits.scheduled_on} loss, device {device}")
    key = job.key
    ckpt_path = store.repo_root() / paths.checkpoint_file(name, key)
    finished = store.repo_root() / paths.finished_file(name, key, params.train.epochs)
    kept = "the training checkpoint is kept: rerun once it is back to continue the same run"
    with checkpoint.claim(ckpt_path):
        with store.server_errors(uri, kept):
            reused = _reuse(job, finished, experiment_id, uri)
        if reused is not None:
            distributed.from_main(REUSED, world)  # pairs with the other ranks' from_main(None, world) above
            result, info = reused
        else:
            resume, discarded_runs = checkpoint.load_checkpoint(ckpt_path, key, params.train.epochs)
            # pairs with the other ranks' from_main(None, world) above: every rank starts from rank 0's state
            distributed.from_main(resume, world)
            with store.server_errors(uri, kept):
                mark_killed(discarded_runs)
                result, info = _train_in_run(job, ckpt_path, key, resume, experiment_id, uri)
        info.save(paths.train_dir(name) / "run.json")
        if reused is None:
            checkpoint.finish(ckpt_path, finished)
    clock.lap("outputs")
    last = result.history[-1]
    print(f"{name}: val_acc {last['val_acc']:.4f}, val_loss {last['val_loss']:.4f} after {last['epoch']} epochs; "
          f"MLflow run {info.run_id}")
    print(clock.line(name), flush=True)
    return info


def _reuse(job: TrainingJob, finished: Path, experiment_id: str, uri: str) -> tuple[FitResult, RunInfo] | None:
    """The finished training of this very identity, its outputs rewritten from its record; None if there is none
    or its MLflow run is not a FINISHED run of this experiment in this store (then it trains again)."""
    state = checkpoint.load_finished(finished, job.key, job.params.train.epochs)
    if state is None:
        return None
    model_uri = finished_model_uri(state["run_id"], experiment_id)
    if model_uri is None:
        print(f"{job.name}: the MLflow run {state['run_id']} of its finished training is not a finished run of "
              f"experiment {job.params.tracking.experiment!r} in {masked(uri)}; training again", file=sys.stderr)
        return None
    job.model.load_state_dict(state["model"])
    result = FitResult(list(state["history"]), list(state["iterations"]))
    job.clock.lap("startup")
    _write_files(job, result)
    print(f"{job.name}: reusing its finished training of these params, data and code ({finished.name}, MLflow run "
          f"{state['run_id']}): no epoch to train", flush=True)
    return result, job.run_info(state["run_id"], experiment_id, uri, model_uri)


def _train_in_run(job: TrainingJob, ckpt_path: Path, key: str, resume: dict[str, Any] | None,
                  experiment_id: str, uri: str) -> tuple[FitResult, RunInfo]:
    """Fit inside the checkpoint's MLflow run (or a new one), checkpointing before each MLflow write."""
    name, params, dataset, splits, model, clock = job.name, job.params, job.dataset, job.splits, job.model, job.clock
    with training_run(name, params.seed, resume["run_id"] if resume else None, experiment_id, uri) as run:

        def save(state: dict[str, Any]) -> None:
            checkpoint.save_checkpoint(ckpt_path, state | {"fingerprint": key, "run_id": run.run_id})
            run.resumable = True  # from here on a kill leaves a checkpoint that reopens this run

        def started(state: dict[str, Any]) -> None:
            """Checkpoint first (so a kill from here on reopens this run), then describe the run."""
            save(state)
            run.describe(run_params(name, params, count_parameters(model)) | job.decision.mlflow_params(),
                         run_tags(name, params, job.env, splits.scheduled_on), dataset, state["history"])
            clock.lap("startup")

        def after_epoch(row: dict[str, float], state: dict[str, Any]) -> None:
            save(state)
            run.log_epoch(row)

        result = job.fit(resume, on_start=started, on_epoch=after_epoch)
        clock.lap("epochs", carve=("compile", result.compile_seconds))
        model_uri = _write_outputs(job, result, run)
    return result, job.run_info(run.run_id, experiment_id, uri, model_uri)


def _write_files(job: TrainingJob, result: FitResult) -> torch.nn.Module:
    """The stage's outs: model file and history CSVs; return the model as written (CPU, contiguous, eval)."""
    model = job.model.cpu().to(memory_format=torch.contiguous_format).eval()
    config = model_config(job.name, job.params.model(job.name), job.params.train.normalize)
    save_model(paths.model_file(job.name), model, config, list(job.dataset.classes))
    write_history(job.name, result.history)
    write_csv(paths.train_dir(job.name) / "iterations.csv", result.iterations, ("step", "epoch", "loss"))
    return model


def _write_outputs(job: TrainingJob, result: FitResult, run: TrainingRun) -> str:
    """The outs, the curves and the run's MLflow model; return the model's URI."""
    model = _write_files(job, result)
    figure = training_curves({job.name: result.history})
    run.log_figure(figure, "figures/training_curves.png")
    close(figure)
    # the logged MLflow model takes normalised inputs: its example is normalised as in training
    images = torch.from_numpy(job.dataset.test.images[:2]).permute(0, 3, 1, 2)
    example = Normalizer.for_model(model, torch.device("cpu"))(images)
    return run.log_model(model, example)
