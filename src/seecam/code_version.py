"""Which code a stage runs, as a digest: resumes and seed pooling must never mix code versions.

The `.py` deps of a stage in dvc.yaml are exactly the code it imports (tests/test_pipeline.py keeps
them so), so hashing them names the code version without git: uncommitted edits count too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from seecam.errors import SeecamError
from seecam.params import MODELS

PIPELINE = Path("dvc.yaml")


def code_files(stage: str, pipeline: Path = PIPELINE) -> list[Path]:
    """The `.py` deps of `stage` in dvc.yaml: exactly the code it runs."""
    try:
        deps = yaml.safe_load(pipeline.read_text())["stages"][stage]["deps"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise SeecamError(f"{pipeline} has no stage {stage} with deps; run from the project root") from None
    return [pipeline.parent / dep for dep in deps if dep.endswith(".py")]


def code_digest(files: list[Path]) -> str:
    """sha256 over the files' names and contents: any edit to the code changes it."""
    digest = hashlib.sha256()
    for path in sorted(set(files)):
        content = path.read_bytes()
        digest.update(f"{path.as_posix()}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()


def training_code_digest(pipeline: Path = PIPELINE) -> str:
    """One digest over every train_<name> stage's code, so all models of one configuration share it."""
    return code_digest([path for name in MODELS for path in code_files(f"train_{name}", pipeline)])
