"""The train_<name> stage: reuse a finished training, resume a checkpoint or start afresh; run the training loop
(training_loop.py) inside the model's MLflow run, and write the model file, its history and run.json.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seecam import checkpoint, distributed, paths
from seecam.checkpoint import Checkpoint
from seecam.code_version import training_code_digest
from seecam.compiling import Decision
from seecam.credentials import masked
from seecam.data.store import Dataset
from seecam.distributed import SINGLE, World
from seecam.history import EpochRow, write_history, write_iterations
from seecam.identity import Environment, checkpoint_key, config_sha, model_sha
from seecam.inference import save_model
from seecam.models import build_model, count_parameters, model_config
from seecam.normalize import Normalizer
from seecam.params import Params
from seecam.plots import close
from seecam.plots.training import training_curves
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
from seecam.training_loop import (
    FitConfig,
    FitResult,
    OnEpoch,
    OnStart,
    TrainSplits,
    compile_decision,
    fit,
    seed_everything,
    training_splits,
)


@dataclass(frozen=True)
class TrainingJob:
    """One train stage's inputs, decided once: what to train, on what, how the loop runs, which code."""

    name: str
    params: Params
    dataset: Dataset
    splits: TrainSplits
    model: torch.nn.Module
    loop: FitConfig  # device, ranks and the compile decision, made (and logged) once
    clock: StageClock
    env: Environment  # the code, data and machine beside params.yaml (identity.py)

    @property
    def decision(self) -> Decision:
        """The compile decision fit runs under: run_train makes it before the job, so a stage's loop has one."""
        assert self.loop.decision is not None
        return self.loop.decision

    @property
    def key(self) -> str:
        """The checkpoint key: a checkpoint is resumed, or a finished training reused, only under it."""
        return checkpoint_key(self.name, self.params, self.env, self.decision.compiled)

    def fit(self, resume: Checkpoint | None, **hooks: OnStart | OnEpoch) -> FitResult:
        """The loop under this job's settings, from the checkpoint's state when there is one."""
        return fit(self.model, self.splits, self.loop, resume=resume.training_state() if resume else None, **hooks)

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
        experiment_id = store.open_experiment(params.tracking)
    splits = training_splits(dataset, params.data, device)
    seed_everything(params.seed)
    model = build_model(name, params.model(name), params.train.normalize)
    loop = FitConfig(params.train, params.seed, device, name, world,
                     compile_decision(params.train, len(splits.train_y), device))
    job = TrainingJob(name, params, dataset, splits, model, loop, clock,
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
    print(f"{name}: val_acc {last.val_acc:.4f}, val_loss {last.val_loss:.4f} after {last.epoch} epochs; "
          f"MLflow run {info.run_id}")
    print(clock.line(name), flush=True)
    return info


def _reuse(job: TrainingJob, finished: Path, experiment_id: str, uri: str) -> tuple[FitResult, RunInfo] | None:
    """The finished training of this very identity, its outputs rewritten from its record; None if there is none
    or its MLflow run is not a FINISHED run of this experiment in this store (then it trains again)."""
    record = checkpoint.load_finished(finished, job.key, job.params.train.epochs)
    if record is None:
        return None
    model_uri = finished_model_uri(record.run_id, experiment_id)
    if model_uri is None:
        print(f"{job.name}: the MLflow run {record.run_id} of its finished training is not a finished run of "
              f"experiment {job.params.tracking.experiment!r} in {masked(uri)}; training again", file=sys.stderr)
        return None
    job.model.load_state_dict(record.model)
    result = FitResult([EpochRow(**row) for row in record.history], list(record.iterations))
    job.clock.lap("startup")
    _write_files(job, result)
    print(f"{job.name}: reusing its finished training of these params, data and code ({finished.name}, MLflow run "
          f"{record.run_id}): no epoch to train", flush=True)
    return result, job.run_info(record.run_id, experiment_id, uri, model_uri)


def _train_in_run(job: TrainingJob, ckpt_path: Path, key: str, resume: Checkpoint | None,
                  experiment_id: str, uri: str) -> tuple[FitResult, RunInfo]:
    """Fit inside the checkpoint's MLflow run (or a new one), checkpointing before each MLflow write."""
    with training_run(job.name, job.params.seed, resume.run_id if resume else None, experiment_id, uri) as run:

        def save(state: dict[str, Any]) -> None:
            checkpoint.save_checkpoint(ckpt_path, Checkpoint.of(state, key, run.run_id))
            run.resumable = True  # from here on a kill leaves a checkpoint that reopens this run

        def started(state: dict[str, Any]) -> None:
            """Checkpoint first (so a kill from here on reopens this run), then describe the run."""
            save(state)
            run.describe(run_params(job.name, job.params, count_parameters(job.model)) | job.decision.mlflow_params(),
                         run_tags(job.name, job.params, job.env, job.splits.scheduled_on), job.dataset,
                         [EpochRow(**row) for row in state["history"]])
            job.clock.lap("startup")

        def after_epoch(row: EpochRow, state: dict[str, Any]) -> None:
            save(state)
            run.log_epoch(row)

        result = job.fit(resume, on_start=started, on_epoch=after_epoch)
        job.clock.lap("epochs", carve=("compile", result.compile_seconds))
        model_uri = _write_outputs(job, result, run)
    return result, job.run_info(run.run_id, experiment_id, uri, model_uri)


def _write_files(job: TrainingJob, result: FitResult) -> torch.nn.Module:
    """The stage's outs: model file and history CSVs; return the model as written (CPU, contiguous, eval)."""
    model = job.model.cpu().to(memory_format=torch.contiguous_format).eval()
    config = model_config(job.name, job.params.model(job.name), job.params.train.normalize)
    save_model(paths.model_file(job.name), model, config, list(job.dataset.classes))
    write_history(job.name, result.history)
    write_iterations(job.name, result.iterations)
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
