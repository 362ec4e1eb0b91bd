"""Per-epoch training checkpoints that make a killed run resume to the same result, and the record a finished
training leaves so that a rerun of the same identity trains nothing.

A checkpoint (`Checkpoint`, the one definition of what the file holds) has everything the next epoch depends
on: model, optimizer and scheduler state, the data-order generator, every rank's random streams, the history
so far and the MLflow run id. It is scratch state, not a product: its `fingerprint` is
identity.checkpoint_key (every input of the training but the number of
epochs, plus the compile decision), the file name carries it
so parallel experiments never share one. So a checkpoint is only ever resumed
by the same code behaviour on the same inputs, and a longer run can continue a shorter one that was killed.

A finished training turns its last checkpoint into `<name>-<key>-<epochs>.done` (`finish`, `Finished`): the
weights, the history and the run id, without the optimiser and random state (a third of the bytes: nothing continues
from it). About 5 MB per trained configuration at the tutorial's size, kept like DVC's cache keeps every
models/<name>.pt; deleting checkpoints/ is always safe and only costs a retrain.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import torch
from filelock import FileLock, Timeout

from seecam.atomic import write_serialised
from seecam.errors import SeecamError
from seecam.safe_load import Refused, load_tensors


@dataclass(frozen=True)
class Finished:
    """What a finished training keeps (`finish`): enough to rewrite its outputs, nothing to continue from.

    Plain values and tensors only, so that a file of it loads without unpickling code (safe_load).
    """

    fingerprint: str  # identity.checkpoint_key of the training
    run_id: str  # its MLflow run
    epoch: int  # epochs completed
    model: dict[str, torch.Tensor]
    history: list[dict[str, float]]  # history.EpochRow's fields, one dict per epoch
    iterations: list[dict[str, float]]  # history.ITERATION_COLUMNS, one dict per step

    def payload(self) -> dict[str, Any]:
        """The file's contents: a plain dict of the fields (not dataclasses.asdict, which copies every tensor)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True)
class Checkpoint(Finished):
    """A finished record plus the rest of what the next epoch depends on: a killed run resumes from it to the
    same result."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    generator: torch.Tensor  # the data order's state, the same on every rank
    rng: list[dict[str, Any]]  # rank r's own random streams (dropout, augmentation) at index r

    @classmethod
    def of(cls, state: dict[str, Any], fingerprint: str, run_id: str) -> Checkpoint:
        """The checkpoint of a training state (training_loop.TrainState.state_dict) under its key and run."""
        return cls(fingerprint=fingerprint, run_id=run_id, **state)

    def training_state(self) -> dict[str, Any]:
        """The state to resume from (what TrainState.load_state_dict takes): all but the key and the run."""
        return {key: value for key, value in self.payload().items() if key not in ("fingerprint", "run_id")}

    def finished(self) -> Finished:
        """What `finish` keeps of it."""
        return Finished(**{field.name: getattr(self, field.name) for field in fields(Finished)})


Record = TypeVar("Record", bound=Finished)


def save_checkpoint(path: Path, record: Finished) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint, a full disk is one line."""
    payload = record.payload()
    write_serialised(path, lambda file: torch.save(payload, file))


def read_checkpoint(path: Path, quiet: bool = False, kind: type[Record] = Checkpoint) -> Record | None:
    """The file's `kind` of record, or None (saying so) if it is torn, foreign or incomplete."""
    names = [field.name for field in fields(kind)]
    try:
        state = load_tensors(path)
    except Refused:
        reason = "it holds objects seecam will not load"
    except Exception as exc:  # a torn or foreign file: never fatal, training just restarts
        reason = type(exc).__name__
    else:
        if isinstance(state, dict) and state.keys() >= set(names):
            return kind(**{name: state[name] for name in names})
        reason = "not a seecam checkpoint"
    if not quiet:
        print(f"checkpoint {path} is unreadable ({reason}); starting fresh", file=sys.stderr)
    return None


@contextmanager
def claim(path: Path) -> Iterator[None]:
    """Hold `<checkpoint>.lock` while training: another run then knows this checkpoint is live, not stale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path) as held:
        if not held:
            raise SeecamError(f"another process is training with the same params, data and code ({path}); "
                              "wait for it to finish")
        yield
        if not path.exists():  # finished or reused: no checkpoint, so no lock to leave behind
            path.with_suffix(".lock").unlink(missing_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """Try to take the checkpoint's lock without waiting; yield whether we hold it."""
    lock = FileLock(path.with_suffix(".lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def remove(path: Path) -> None:
    """Delete a checkpoint and its lock file (scratch state: nothing else refers to them)."""
    path.unlink(missing_ok=True)
    path.with_suffix(".lock").unlink(missing_ok=True)


def discard_stale(path: Path) -> list[str]:
    """Delete this model's checkpoints made with other params, data or code that no live run holds.

    Return their MLflow run ids: nothing will resume those runs any more.
    """
    name = path.name.rsplit("-", 1)[0]
    run_ids = []
    for other in sorted(path.parent.glob(f"{name}-*.ckpt")):
        if other == path:
            continue
        with _locked(other) as held:
            if not held:  # a queued experiment with other params is training right now
                continue
            state = read_checkpoint(other, quiet=True)
            print(f"checkpoint {other} was made with other params, data or code; deleted", file=sys.stderr)
            remove(other)
        if state is not None:
            run_ids.append(state.run_id)
    return run_ids


def load_checkpoint(path: Path, expected_fingerprint: str, epochs: int) -> tuple[Checkpoint | None, list[str]]:
    """(state to resume from or None, run ids of discarded checkpoints), saying why on stderr.

    The discarded run ids let the caller close those runs: nothing will ever resume them.
    """
    discarded = discard_stale(path)
    if not path.is_file():
        print(f"no checkpoint {path} for these params, data and code; starting fresh", file=sys.stderr)
        return None, discarded
    state = read_checkpoint(path)
    if state is None:
        return None, discarded
    if state.fingerprint != expected_fingerprint:
        reason = "was made with other params, data or code"
    elif state.epoch > epochs:
        reason = f"is at epoch {state.epoch} > train.epochs={epochs}"
    else:
        print(f"resuming from {path} after epoch {state.epoch}", file=sys.stderr)
        return state, discarded
    print(f"checkpoint {path} {reason}; starting fresh", file=sys.stderr)
    return None, [*discarded, state.run_id]


def finish(path: Path, finished: Path) -> None:
    """Keep of the last checkpoint what a rerun of the same identity reuses (weights, history, run id) as
    `finished`, and delete the checkpoint: nothing resumes a finished training."""
    state = read_checkpoint(path, quiet=True)
    if state is not None:
        save_checkpoint(finished, state.finished())
    remove(path)


def load_finished(path: Path, expected_fingerprint: str, epochs: int) -> Finished | None:
    """The finished training of this key and number of epochs, or None (silently when there is none)."""
    if not path.is_file():
        return None
    state = read_checkpoint(path, kind=Finished)
    if state is None or (state.fingerprint, state.epoch) != (expected_fingerprint, epochs):
        return None
    return state
