"""Load a trained model file and run it on uint8 images: shared by training, evaluate and explain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seecam.atomic import write_serialised
from seecam.config_loader import shown
from seecam.errors import SeecamError
from seecam.models import Net, model_from_config
from seecam.normalize import Normalizer
from seecam.paths import train_stage
from seecam.safe_load import Refused, load_tensors


def to_device(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """NHWC uint8 numpy -> NCHW uint8 tensor on `device`, kept channels_last (no copy; 4x smaller than float).

    channels_last is the layout oneDNN and cuDNN convolutions run fastest in (measured 1.2-1.8x on this CPU).
    """
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class scores for uint8 NCHW images, in eval mode (the model's mode is restored)."""
    normalize = Normalizer.for_model(model, images.device)
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(normalize(chunk)).float() for chunk in images.split(batch_size)])
    finally:
        model.train(was_training)


def save_model(path: Path, model: torch.nn.Module, config: dict[str, Any], classes: list[str]) -> None:
    """State dict + the config that rebuilds it; loadable with torch.load(weights_only=True)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    write_serialised(path, lambda file: torch.save({"config": config, "classes": classes, "state_dict": state}, file))


def _replace(path: Path, stage: str) -> str:
    """The commands that put a good model file back.

    `dvc repro` alone is not one: DVC trusts a file's size and mtime, so damage that kept both (a flipped byte)
    reads as "didn't change, skipping". `--relink` restores the bytes dvc.lock names from DVC's cache whatever the
    file's state, and `-f` lets it replace a file whose bytes DVC never saw; retraining works without that cache
    (tests/e2e/pipeline/test_named_fixes.py runs both).
    """
    return f"`dvc checkout --relink -f {path}` restores it from DVC's cache (`dvc repro -f -s {stage}` retrains it)"


def _read_payload(path: Path, stage: str) -> dict[str, Any]:
    """The model file's dict, or one line saying what is wrong with the file and how to replace it."""
    try:
        payload = load_tensors(path)
    except Refused as exc:
        refused = f" ({exc})" if str(exc) else ""
        raise SeecamError(f"{path}: holds objects seecam will not load{refused}: a model file is tensors and plain "
                          f"values, and loading anything else could run code; {_replace(path, stage)}") from None
    except Exception as exc:  # noqa: BLE001 (cut, empty or foreign bytes fail in many ways; all mean "damaged")
        reason = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else type(exc).__name__
        raise SeecamError(f"{path}: not a readable model file ({reason}); {_replace(path, stage)}") from None
    if not (isinstance(payload, dict) and isinstance(payload.get("config"), dict)
            and isinstance(payload.get("state_dict"), dict)):
        raise SeecamError(f"{path}: not a seecam model file (no config and state_dict); {_replace(path, stage)}")
    return payload


def load_model(path: Path, expected_name: str, device: torch.device | None = None) -> tuple[Net, dict]:
    """Rebuild model `expected_name` from its file; a missing or damaged file names the stage to (re)run."""
    stage = train_stage(expected_name)
    if not path.is_file():
        raise SeecamError(f"{path}: model file missing; run `dvc repro {stage}`")
    payload = _read_payload(path, stage)
    config = payload["config"]
    if config.get("name") != expected_name:
        raise SeecamError(f"{path}: holds a {shown(config.get('name'))} model, expected {expected_name!r}; "
                          f"{_replace(path, stage)}")
    try:
        model = model_from_config(config)
    except (KeyError, TypeError, SeecamError) as exc:
        raise SeecamError(f"{path}: its config does not describe a model ({exc}); {_replace(path, stage)}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise SeecamError(f"{path}: weights do not fit the architecture in its config ({first}); "
                          f"{_replace(path, stage)}") from None
    model = model.to(device or torch.device("cpu"), memory_format=torch.channels_last)
    return model.eval(), payload
