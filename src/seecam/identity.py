"""What makes a training run what it is: one definition, and the identities derived from it.

A configuration's numbers are fixed by its shared inputs (`inputs`): every `train.*` param, how the data is
split and which data it is (`data.val_size`, `data.subset`, `data.split_seed`, `data.source` and the arrays'
sha256), the behaviour of the training code (code_version.training_code_digest: comments and docstrings are
not behaviour), what the machine resolves (the device type `train.device` gives, the precision `train.precision`
means there, and `torch.__version__`) and `seed`. A model's own block (`models.<name>`: its kind and params) is
its `model_sha`, apart: adding or changing one model never changes another's identity. The keys come from the
params dataclasses' own fields, so a key added to TrainParams or to a model's params joins the identities
without an edit here. Not inputs: `evaluate.*`, `explain.*`, `tracking.*` and the download's timeouts, which
never change the weights.

`seed` varies the training alone (initial weights, data order, augmentation, dropout): the validation split is
drawn by `data.split_seed`, the same for every seed, so the seeds of one configuration train and validate on
the same images and their spread is training noise only.

Each identity leaves out only what is named here, with the reason:

- `config_sha` (the MLflow tag the verdict pools runs by; 16 hex digits): the shared inputs but `seed`, because
  the verdict pools the seeds of one configuration; every model of a configuration shares it.
- `model_sha` (16 hex digits): the model's kind (its params class) and its flattened block, not its name.
- `checkpoint_key` (a checkpoint is resumed, or a finished training reused, only under the same key): the
  shared inputs but `train.epochs`, because epoch k's training does not depend on the total, so a longer run
  continues a shorter one that was killed; plus the model's name and model_sha, and the resolved compile
  decision (`compiling.Decision.compiled`): `train.compile: auto` resolves by the number of epochs, which the
  key leaves out, and compiled and eager steps give different numbers.
- `sweep_digest` (`seecam sweep`'s experiment names `seed-N-<6 hex>`): the shared inputs but `seed`, the
  name's other half, and the model_sha of every model the sweep trains (params.yaml's, or those named). It is
  computed before any data exist and before any experiment resolves a device, so the data params that choose the
  arrays (`data.source`, `url`, `md5`, `synthetic`) stand in for the arrays' sha256, and `train.device`,
  `train.precision` count as params.yaml spells them (no torch version either: the queue runs this venv).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from seecam.config_loader import flatten
from seecam.params import Params, resolved_precision

POOLED = "seed"  # out of config_sha: the verdict pools seeds
TOTAL = "train.epochs"  # out of the checkpoint key: a longer run continues a shorter one
DATA_STAND_INS = ("url", "md5", "synthetic")  # data.* that choose the arrays, for the sweep's digest


@dataclass(frozen=True)
class Environment:
    """What shapes a training's numbers beside params.yaml. Before a sweep's experiments run, only the code is
    known: `data_sha256` None takes DATA_STAND_INS, `device` None leaves device and precision as spelt."""

    code_sha256: str
    data_sha256: str | None = None
    device: str | None = None  # the resolved device type: cpu | cuda | mps
    torch_version: str | None = None


def inputs(params: Params, env: Environment) -> dict[str, Any]:
    """Every shared input of a training run as dotted keys (no model's block: that is model_sha)."""
    data = params.data
    out: dict[str, Any] = {f"train.{k}": v for k, v in flatten(params.train).items()}
    if env.device is not None:
        out |= {"train.device": env.device, "train.precision": resolved_precision(params.train.precision, env.device),
                "torch": env.torch_version}
    out |= {f"data.{k}": getattr(data, k) for k in ("val_size", "subset", "split_seed", "source")}
    if env.data_sha256 is None:
        out |= {f"data.{k}": v for name in DATA_STAND_INS for k, v in flatten(getattr(data, name), f"{name}.").items()}
    else:
        out["data.sha256"] = env.data_sha256
    return out | {"code": env.code_sha256, "seed": params.seed}


def digest(values: dict[str, Any]) -> str:
    """sha256 of the values as sorted JSON: the same values give the same digest in any process."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def config_sha(params: Params, env: Environment) -> str:
    """16 hex digits over every shared input but `seed`: the runs of one configuration, whatever their seed."""
    return digest({k: v for k, v in inputs(params, env).items() if k != POOLED})[:16]


def model_sha(name: str, params: Params) -> str:
    """16 hex digits over model `name`'s kind and block: which network, not what it is called."""
    block = params.model(name)
    return digest({"kind": type(block).__name__} | flatten(block))[:16]


def checkpoint_key(name: str, params: Params, env: Environment, compiled: bool) -> str:
    """Every input of model `name`'s training but `train.epochs`, with the compile decision."""
    kept = {k: v for k, v in inputs(params, env).items() if k != TOTAL}
    return digest(kept | {"model": name, "model_sha": model_sha(name, params), "compiled": compiled})


def sweep_digest(params: Params, code_sha256: str) -> str:
    """6 hex digits over every input of every model of `params` but `seed`, as params.yaml spells them."""
    shared = {k: v for k, v in inputs(params, Environment(code_sha256)).items() if k != POOLED}
    return digest(shared | {f"models.{name}": model_sha(name, params) for name in params.models})[:6]
