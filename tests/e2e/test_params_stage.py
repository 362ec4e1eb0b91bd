"""Bad params through the real stage scripts: exit 2, one `error: params.yaml: ...` line, no file written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import RepoCopy, imported_modules


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.relative_to(root).parts}


def write_bad_bytes(repo: RepoCopy) -> None:
    path = repo.root / "params.yaml"
    path.write_bytes(b"# param\xe8tres (latin-1)\n" + path.read_bytes())


CASES = {
    "nan_lr": (("train", "cnn"), lambda r: r.set_params(train__lr=float("nan")),
               "train.lr must be a finite number, got nan"),
    "negative_seed": (("train", "se"), lambda r: r.set_params(seed=-1), "seed must be >= 0, got -1"),
    "not_utf8": (("download",), write_bad_bytes, "not UTF-8 text (b'\\xe8' on line 1); save it as UTF-8"),
    "head_layer": (("explain",), lambda r: r.set_params(explain__layer="head.fc1"),
                   "explain.layer 'head.fc1' must be a feature-map (4-D) layer of both models: block1, "),
    "empty_file": (("train", "cnn"), lambda r: (r.root / "params.yaml").write_text(""),
                   "has no keys; restore it (git checkout params.yaml)"),
    "tracking_uri": (("evaluate",), lambda r: r.set_params(tracking__uri="notascheme"),
                     "tracking.uri must be '' (the project's store) or a URI MLflow can track to:"),
    "huge_bootstrap": (("evaluate",), lambda r: r.set_params(evaluate__bootstrap_samples=10**12),
                       "evaluate.bootstrap_samples must be <= 100,000"),
    "huge_deletion_steps": (("report",), lambda r: r.set_params(explain__deletion_steps=10**6),
                            "explain.deletion_steps must be <= 1,024"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_params_stop_the_stage_with_one_line_and_write_nothing(repo_copy, case):
    (script, *args), spoil, message = CASES[case]
    repo_copy.use_tiny_synthetic_data()
    spoil(repo_copy)
    before = tree(repo_copy.root)
    result = repo_copy.stage(script, *args, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: params.yaml: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert tree(repo_copy.root) == before


def test_dvc_repro_stops_at_the_first_stage_with_the_params_line(repo_copy):
    repo_copy.use_tiny_synthetic_data()
    repo_copy.set_params(train__weight_decay=float("nan"))
    result = repo_copy.dvc("repro", check=False)
    assert result.returncode != 0
    assert "error: params.yaml: train.weight_decay must be a finite number, got nan" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert not any((repo_copy.root / d).exists() for d in ("models", "checkpoints", "data/cifar10"))


@pytest.mark.parametrize("stage", [("train", "cnn"), ("evaluate",), ("explain",), ("report",)])
def test_a_bad_params_file_stops_the_stage_before_torch_and_mlflow_load(repo_copy, stage):
    """A params.yaml mistake costs a tenth of a second, not the five that loading torch and mlflow take."""
    script, *args = stage
    repo_copy.set_params(train__lr=float("nan"))
    result = repo_copy.run(sys.executable, "-X", "importtime", f"stages/{script}.py", *args, check=False)
    loaded = imported_modules(result.stderr)
    assert result.returncode == 2 and "error: params.yaml: train.lr must be a finite number" in result.stderr
    assert "yaml" in loaded and not {"torch", "mlflow", "matplotlib", "numpy"} & loaded, sorted(loaded)
