"""Data-parallel training through torchrun: launch, process group, shards and the sums ranks share.

`train.processes: 1` never touches torch.distributed: the `SINGLE` world makes every helper here a no-op,
so the one-process path computes exactly what it did before DDP existed. With N > 1 the stage
re-launches itself under `torchrun --standalone` (users on several machines run torchrun themselves);
each rank then trains on its shard of the same shuffled order, and DDP all-reduces the gradients.

Randomness: the data order is one stream every rank draws alike; dropout and augmentation are each rank's own
(rank_seeds), saved per rank in the checkpoint and restored to the same rank.

Sharding: every rank draws the same permutation (same generator, same seed), drops the last
`n mod world` entries (a different random few each epoch, as DistributedSampler(drop_last=True) does),
and takes every world-th index from its rank on. So each kept index is trained once per epoch and
every rank runs the same number of steps: a rank with one step more would wait forever in DDP's all-reduce.
Global step i is then the same set of images the one-process run with batch `per_rank * world` takes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from seecam.errors import SeecamError, Stopped
from seecam.lifeline import parent_death_signal
from seecam.params import TrainParams

# A dead rank makes the others fail their next collective after this long instead of hanging.
TIMEOUT_ENV = "SEECAM_DDP_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 300.0
_LAUNCHER_ENV = ("LOCAL_RANK", "TORCHELASTIC_RUN_ID")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    `grouped` says a process group exists (launched by torchrun), even of size 1: then the model is wrapped
    in DDP and sums go through all-reduce, which is how tests check DDP changes no number.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    grouped: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs to MLflow and writes checkpoints, reports and the model."""
        return self.rank == 0


SINGLE = World()  # one process, no process group: today's path


def under_launcher() -> bool:
    """True inside a torchrun worker (it sets LOCAL_RANK and TORCHELASTIC_RUN_ID)."""
    return any(name in os.environ for name in _LAUNCHER_ENV)


def check_processes(train: TrainParams, device: torch.device) -> None:
    """Refuse, before any work, a process count this device cannot run."""
    if train.processes == 1:
        return
    if device.type == "mps":
        raise SeecamError("train.processes > 1 needs cuda or cpu (torch.distributed has no MPS backend); "
                          "set train.processes: 1 or train.device: cpu")
    if device.type == "cuda" and torch.cuda.device_count() < train.processes:
        raise SeecamError(f"train.processes is {train.processes} but only {torch.cuda.device_count()} CUDA GPU(s) "
                          "are visible; lower train.processes or use train.device: cpu")
    if train.sync_batchnorm and device.type != "cuda":
        raise SeecamError("train.sync_batchnorm needs CUDA (torch's SyncBatchNorm has no CPU kernel); "
                          "set it to false on cpu")


def relaunch(processes: int, argv: list[str]) -> None:
    """Run `argv` (a script and its arguments) as `processes` workers of `torchrun --standalone`.

    torchrun stops every worker when one fails and prints which rank failed; the failed rank printed its
    own error line. Its non-zero exit becomes ours. A SIGTERM to this process (or its parent's death: lifeline.py)
    is passed on to torchrun, which passes it to every worker, and each stops as on Ctrl-C; this process waits
    for them. Killed outright, it still stops torchrun: the kernel sends torchrun SIGTERM when it exits.
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *argv]
    print(f"starting {processes} training processes: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    linux = sys.platform.startswith("linux")
    with subprocess.Popen(command, preexec_fn=parent_death_signal if linux else None) as torchrun:
        try:
            code = torchrun.wait()
        except KeyboardInterrupt as exc:
            if isinstance(exc, Stopped):  # only this process got it; Ctrl-C reached the whole process group
                torchrun.send_signal(signal.SIGTERM)
            torchrun.wait()
            raise
    if code:
        raise SeecamError(f"a training process failed, so torchrun stopped all {processes} (exit {code}); "
                          "the failing rank's error is above", exit_code=code)


@contextmanager
def process_group(device: torch.device) -> Iterator[tuple[World, torch.device]]:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU) if launched by it; always leave it.

    Yields this process's World and its device (`cuda:<local rank>` on CUDA).
    """
    if not under_launcher():
        yield SINGLE, device
        return
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]), True)
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
        device = torch.device("cuda", world.local_rank)
    seconds = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(seconds=seconds),
                            device_id=device if device.type == "cuda" else None)
    try:
        yield world, device
    finally:
        dist.destroy_process_group()


def rank_batch_size(train: TrainParams, world: World) -> int:
    """Images per rank per step: the global batch `train.batch_size` split evenly, or whole with scale_batch."""
    if train.scale_batch:
        return train.batch_size
    if train.batch_size % world.size:
        raise SeecamError(f"train.batch_size {train.batch_size} does not split over {world.size} processes; "
                          "make it a multiple of the process count or set train.scale_batch: true")
    return train.batch_size // world.size


def shard(order: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's part of an epoch's order: every world-th entry from `rank`, after dropping `n mod world`."""
    if world.size == 1:
        return order
    return order[: len(order) - len(order) % world.size][world.rank::world.size]


def rank_seeds(seed: int, world: World) -> tuple[int, int]:
    """This rank's (dropout, augmentation) seeds, derived from (seed, rank) alone.

    numpy's SeedSequence(seed).spawn(world.size) gives each rank a child whose streams are independent of the
    others' (not `seed + rank`, where rank 1 of seed s would be rank 0 of seed s + 1). Ranks then apply
    different dropout masks and different crops, flips and jitter to their different images, and a rerun with
    the same world size draws the same again. One process never calls this: it keeps the `seed` streams.
    """
    dropout, augment = np.random.SeedSequence(seed).spawn(world.size)[world.rank].generate_state(2, np.uint64)
    return int(dropout), int(augment)


def gather(value: Any, world: World) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank ([value] without a group): e.g. each rank's random
    streams, for rank 0's checkpoint. A collective: every rank calls it at the same point."""
    if not world.grouped:
        return [value]
    values: list[Any] = [None] * world.size
    dist.all_gather_object(values, value)
    return values


def wrap(model: torch.nn.Module, world: World, sync_batchnorm: bool) -> torch.nn.Module:
    """The module the training step calls: DDP (optionally with SyncBatchNorm) when there are several ranks.

    SyncBatchNorm replaces the BatchNorm modules inside `model` but keeps their parameter objects, so an
    optimizer built on `model.parameters()` still updates them.
    """
    if not world.grouped:
        return model
    if sync_batchnorm:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [world.local_rank] if next(model.parameters()).is_cuda else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def sum_over_ranks(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """Element-wise sum over all ranks (the tensor itself with one rank)."""
    if world.grouped:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def sync_buffers(model: torch.nn.Module, world: World) -> None:
    """Copy rank 0's buffers (BatchNorm running stats) to every rank.

    DDP broadcasts them before each forward, so after the last step of an epoch each rank still holds
    its own; validation and the saved model must see the same ones everywhere.
    """
    if world.grouped:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def from_main(value: Any, world: World) -> Any:
    """Rank 0's `value` on every rank (e.g. the checkpoint it decided to resume)."""
    if not world.grouped:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
