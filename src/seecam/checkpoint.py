"""Per-epoch training checkpoints that make a killed run resume to the same result.

A checkpoint holds everything the next epoch depends on: model, optimizer and
scheduler state, both random generators, the history so far and the MLflow
run id. Its `fingerprint` covers every input that changes training except the
number of epochs, so a checkpoint from other params is never resumed, and a
longer run can continue a shorter one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from seecam.atomic import atomic_path
from seecam.params import Params, flatten


def fingerprint(name: str, params: Params, data_sha256: str, device: torch.device) -> str:
    """Digest of everything that shapes training, minus train.epochs."""
    train = {k: v for k, v in flatten(params.train).items() if k != "epochs"}
    inputs = {
        "model": name, "model_params": flatten(params.model(name)), "train": train, "seed": params.seed,
        "val_size": params.data.val_size, "subset": params.data.subset, "data": data_sha256,
        "device": device.type,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, expected_fingerprint: str, epochs: int) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None (saying why) to start fresh."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: never fatal, training just restarts
        print(f"checkpoint {path} is unreadable ({type(exc).__name__}); starting fresh", file=sys.stderr)
        return None
    if state.get("fingerprint") != expected_fingerprint:
        print(f"checkpoint {path} was made with other params or data; starting fresh", file=sys.stderr)
        return None
    if state["epoch"] > epochs:
        print(f"checkpoint {path} is at epoch {state['epoch']} > train.epochs={epochs}; starting fresh",
              file=sys.stderr)
        return None
    print(f"resuming from {path} after epoch {state['epoch']}", file=sys.stderr)
    return state
