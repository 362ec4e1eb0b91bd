"""What a newcomer meets first: the Makefile's install shows progress, `make demo` changes only the params it
names, and what DVC writes for a look (dvc_plots/) stays out of git."""

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import torch

from helpers import REPO


def demo_overrides() -> list[str]:
    """The `-S key=value` of `make demo`."""
    line = next(line for line in (REPO / "Makefile").read_text().splitlines() if line.startswith("DEMO :="))
    return re.findall(r"-S (\S+)", line)


def test_the_demo_changes_only_the_params_lines_it_sets(tmp_path):
    """`dvc exp run -S` rewrites params.yaml in its own YAML style: the file is kept in that style, so the demo's
    diff is its own values (issue 20: 21 lines were added for 3 values)."""
    from dvc.utils.hydra import apply_overrides  # what `dvc exp run -S` calls

    shutil.copy(REPO / "params.yaml", tmp_path)
    before = (tmp_path / "params.yaml").read_text().splitlines()
    overrides = demo_overrides()
    apply_overrides(str(tmp_path / "params.yaml"), overrides)
    after = (tmp_path / "params.yaml").read_text().splitlines()
    assert len(after) == len(before)
    changed = [new for old, new in zip(before, after, strict=True) if old != new]
    assert len(changed) == len(overrides) >= 2, changed
    for override, line in zip(overrides, changed, strict=True):
        key, value = override.split("=")
        assert line.strip().startswith(f"{key.rsplit('.', 1)[-1]}: {value}"), (override, line)


def test_installs_show_their_progress():
    """PyTorch's wheels are gigabytes: a quiet pip looked hung for minutes."""
    pip = next(line for line in (REPO / "Makefile").read_text().splitlines() if line.startswith("PIP :="))
    assert not re.search(r"\s(-q|--quiet)\b", pip), pip


def test_dvc_plots_output_is_ignored_by_git():
    ignored = subprocess.run(["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=REPO)
    assert ignored.returncode == 0


def recipe(target: str) -> tuple[str, list[str]]:
    """The Makefile rule of `target`: its prerequisites and its recipe lines."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        body.append(line.strip())
    return lines[start].split(":", 1)[1].strip(), body


def test_make_test_fast_installs_like_make_test_and_runs_the_unit_tests():
    assert recipe("test-fast")[0] == recipe("test")[0]
    # a file's tests (and a shared folder's) share a worker and fixtures, in collection order
    assert recipe("test")[1] == ["pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=20"]
    assert recipe("test-fast")[1] == ["pytest -n 2 --dist loadfile --no-loadscope-reorder tests/unit tests/project"]


def test_the_set_up_writes_the_offline_plots_template_that_dvc_config_names():
    """`dvc plots show/diff` pages render offline only with the template (Vega inlined) DVC's config points at."""
    from seecam.plots_offline import TEMPLATE

    named = re.search(r"^\s*html_template = (\S+)$", (REPO / ".dvc/config").read_text(), re.MULTILINE)
    assert named and REPO / ".dvc" / named[1] == REPO / TEMPLATE  # DVC resolves it inside .dvc/
    prerequisites, body = recipe(str(TEMPLATE))
    assert prerequisites == "$(VENV)/.deps" and body == ["$(VENV)/bin/python -m seecam.plots_offline $@"]
    for target in ("repro", "demo"):
        assert str(TEMPLATE) in recipe(target)[0].split(), target
    assert subprocess.run(["git", "check-ignore", "-q", str(TEMPLATE)], cwd=REPO).returncode == 0  # built, not kept


def test_the_install_leaves_bytecode_for_every_process_to_load():
    """pip installs with --no-compile and compileall compiles on every core: the .pyc files must exist afterwards,
    because where PYTHONDONTWRITEBYTECODE is set no process writes them, and torch and mlflow would be compiled
    from source at every start (12 s of imports, not 5)."""
    for module in (torch, mlflow, torch.nn.functional):
        assert Path(importlib.util.cache_from_source(module.__file__)).is_file(), module.__name__
