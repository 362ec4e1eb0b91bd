"""Which code a stage runs, as a digest: resumes and seed pooling must never mix code versions.

The `.py` deps of a stage in dvc.yaml are exactly the code it imports (tests/project/test_pipeline.py keeps
them so), so hashing them names the code version without git: uncommitted edits count too.
"""

from __future__ import annotations

import hashlib
import subprocess
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


def code_digest(files: list[Path], root: Path | None = None) -> str:
    """sha256 over the files' names (relative to `root` if given) and contents: any edit to the code changes it."""
    digest = hashlib.sha256()
    for path in sorted(set(files)):
        content = path.read_bytes()
        name = path if root is None else path.relative_to(root)
        digest.update(f"{name.as_posix()}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()


def training_code_digest(pipeline: Path = PIPELINE) -> str:
    """One digest over every train_<name> stage's code, so all models of one configuration share it.

    Names are relative to dvc.yaml's folder, so a clone elsewhere (or `seecam sweep` given the repo's path)
    gets the same digest for the same code.
    """
    files = [path for name in MODELS for path in code_files(f"train_{name}", pipeline)]
    return code_digest(files, pipeline.parent)


def git_commit() -> str:
    """HEAD of the checkout the stage runs in ("unknown" outside git): the provenance tag beside the digest."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
