"""Which code a stage runs, as a digest of its behaviour: resumes and seed pooling must never mix code versions,
and must never be split by a comment.

The `.py` deps of a stage in dvc.yaml are exactly the code it imports (tests/project/test_pipeline.py keeps
them so), so digesting them names the code version without git: uncommitted edits count too. Each file counts
by what it does, not by its bytes: `behaviour` is the file's syntax tree (`ast.dump`, which has no comments,
formatting or line numbers) with every docstring removed. Any statement, constant or default changes it; a
comment, a docstring, a blank line or a re-wrapped expression does not. (No training code reads `__doc__`.)
"""

from __future__ import annotations

import ast
import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml

from seecam.errors import SeecamError
from seecam.paths import train_stage

PIPELINE = Path("dvc.yaml")


def stage_names(pipeline: Path = PIPELINE) -> list[str]:
    """The stages of dvc.yaml, in its order."""
    try:
        return list(yaml.safe_load(pipeline.read_text())["stages"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise SeecamError(f"{pipeline} has no stages; run from the project root") from None


def check_train_stages(names: Iterable[str], pipeline: Path = PIPELINE) -> None:
    """Every model of params.yaml (`names`) has its train_<name> stage: without one, its block trains nowhere and
    the stages after training would wait for a model file nothing writes."""
    stages = stage_names(pipeline)
    missing = [name for name in names if train_stage(name) not in stages]
    if missing:
        raise SeecamError(f"models.{missing[0]} has no {train_stage(missing[0])} stage in {pipeline}: add one (README, "
                          "Add a model variant), then `dvc repro`")


def code_files(stage: str, pipeline: Path = PIPELINE) -> list[Path]:
    """The `.py` deps of `stage` in dvc.yaml: exactly the code it runs."""
    try:
        deps = yaml.safe_load(pipeline.read_text())["stages"][stage]["deps"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise SeecamError(f"{pipeline} has no stage {stage} with deps; run from the project root") from None
    return [pipeline.parent / dep for dep in deps if dep.endswith(".py")]


def behaviour(path: Path) -> str:
    """The file's syntax tree without docstrings, as text: what the code does, not how it is written down."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise SeecamError(f"{path}: not valid Python (line {exc.lineno}): {exc.msg}; fix it and rerun") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_digest(files: list[Path], root: Path | None = None) -> str:
    """sha256 over the files' names (relative to `root` if given) and behaviour: a comment changes nothing."""
    digest = hashlib.sha256()
    for path in sorted(set(files)):
        content = behaviour(path).encode()
        name = path if root is None else path.relative_to(root)
        digest.update(f"{name.as_posix()}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()


def stage_code_digest(stage: str, pipeline: Path = PIPELINE) -> str:
    """The digest of `stage`'s code, names relative to dvc.yaml's folder (the same in any clone)."""
    return code_digest(code_files(stage, pipeline), pipeline.parent)


def training_code_digest(names: Iterable[str], pipeline: Path = PIPELINE) -> str:
    """One digest over the code of the train_<name> stages of models `names`.

    Every train stage runs the same code (dvc.yaml gives them one list of deps), so the models of one
    configuration share the digest; a model's training reads only its own stage's, so a model added to
    params.yaml before its stage, or a stage given other code, changes no other model's identity. Names are
    relative to dvc.yaml's folder, so a clone elsewhere (or `seecam sweep` given the repo's path) gets the same
    digest for the same code.
    """
    files = [path for name in names for path in code_files(train_stage(name), pipeline)]
    return code_digest(files, pipeline.parent)


def git_commit() -> str:
    """HEAD of the checkout the stage runs in ("unknown" outside git): the provenance tag beside the digest."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
