"""What makes a training run what it is: one definition, and the three identities derived from it.

A training run is fixed by its inputs (`inputs`): every `train.*` param, the models' params, how the data is
split and which data it is (`data.val_size`, `data.subset`, `data.source` and the arrays' sha256), the
training code (code_version.training_code_digest) and `seed`. The keys come from the params dataclasses' own
fields, so a key added to TrainParams or to a model's params joins all three identities without an edit here.
Not inputs: `evaluate.*`, `explain.*`, `tracking.*` and the download's timeouts, which never change the weights.

Each identity leaves out only what is named here, with the reason:

- `config_sha` (the MLflow tag the verdict pools runs by; 16 hex digits): all but `seed`, because the verdict
  pools the seeds of one configuration.
- `checkpoint_key` (a checkpoint is resumed only under the same key): all but `train.epochs`, because epoch k's
  training does not depend on the total, so a longer run continues a shorter one that was killed; and only the
  trained model's params, because the other models' params do not touch its training. It adds the device type
  and the resolved compile decision (`compiling.Decision.compiled`): `train.compile: auto` resolves by the
  number of epochs, which the key leaves out, and compiled and eager steps give different numbers.
- `sweep_digest` (`seecam sweep`'s experiment names `seed-N-<6 hex>`): all but `seed`, the name's other half.
  It is computed before any data exist, so the data params that choose the arrays (`data.source`, `url`,
  `md5`, `synthetic`) stand in for the arrays' sha256.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from seecam.code_version import training_code_digest
from seecam.config_loader import flatten
from seecam.errors import SeecamError
from seecam.params import MODELS, Params
from seecam.paths import DATA_DIR

POOLED = "seed"  # out of config_sha: the verdict pools seeds
TOTAL = "train.epochs"  # out of the checkpoint key: a longer run continues a shorter one
DATA_STAND_INS = ("url", "md5", "synthetic")  # data.* that choose the arrays, for the sweep's digest


def inputs(params: Params, data_sha256: str | None, code_sha256: str) -> dict[str, Any]:
    """Every input of a training run as dotted keys; `data_sha256` None (no data yet) takes DATA_STAND_INS."""
    data = params.data
    out: dict[str, Any] = {f"train.{k}": v for k, v in flatten(params.train).items()}
    out |= {f"models.{k}": v for k, v in flatten(params.models).items()}
    out |= {"data.val_size": data.val_size, "data.subset": data.subset, "data.source": data.source}
    if data_sha256 is None:
        out |= {f"data.{k}": v for name in DATA_STAND_INS for k, v in flatten(getattr(data, name), f"{name}.").items()}
    else:
        out["data.sha256"] = data_sha256
    return out | {"code": code_sha256, "seed": params.seed}


def _digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def config_sha(params: Params, data_sha256: str, code_sha256: str) -> str:
    """16 hex digits over every input but `seed`: the runs of one configuration, whatever their seed."""
    return _digest({k: v for k, v in inputs(params, data_sha256, code_sha256).items() if k != POOLED})[:16]


def checkpoint_key(name: str, params: Params, data_sha256: str, code_sha256: str, device_type: str,
                   compiled: bool) -> str:
    """Every input of model `name`'s training but `train.epochs`, with the device type and compile decision."""
    others = tuple(f"models.{other}." for other in MODELS if other != name)
    kept = {k: v for k, v in inputs(params, data_sha256, code_sha256).items()
            if k != TOTAL and not k.startswith(others)}
    return _digest(kept | {"model": name, "device": device_type, "compiled": compiled})


def sweep_digest(params: Params, code_sha256: str) -> str:
    """6 hex digits over every input but `seed`, the data params standing in for the data's sha256."""
    return _digest({k: v for k, v in inputs(params, None, code_sha256).items() if k != POOLED})[:6]


def workspace_config_sha(params: Params) -> str:
    """The config_sha that training with the workspace's params, data (data/cifar10/meta.json) and code would tag."""
    meta = DATA_DIR / "meta.json"
    if not meta.is_file():
        raise SeecamError(f"{meta} is missing, so the workspace's configuration is unknown: "
                          "run `dvc repro download` or pass --config-sha")
    return config_sha(params, json.loads(meta.read_text())["sha256"]["all"], training_code_digest())
