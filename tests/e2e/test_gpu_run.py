"""bench/gpu_run.py, the one command a GPU machine runs, dry-run end to end on a CPU as that machine would run it
(python3 and pytest from PATH, no dvc anywhere on it), and bench/gpu_results.py on its bundle; its plan and its
refusals, without a GPU."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from argparse import Namespace
from pathlib import Path

import pytest

from helpers import REPO

STAGE_LINE = r"^\w+: startup [\d.]+ s, compile [\d.]+ s, epochs [\d.]+ s, outputs [\d.]+ s$"


def device_like_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """PATH with `python3` (this venv's, with its pytest) and the system's tools, but no dvc; PYTHONPATH as
    on-device.sh sets it: the checkout's src."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # a link would lose the venv
    (tools / "python3").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CIFAR10_"))}
    env |= {"PATH": f"{tools}{os.pathsep}/usr/bin{os.pathsep}/bin", "PYTHONPATH": str(REPO / "src")}
    assert shutil.which("dvc", path=env["PATH"]) is None
    return env | extra


def gpu_run(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["python3", "bench/gpu_run.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_dry_run_fills_one_bundle_end_to_end_and_the_results_command_writes_the_readme_tables(tmp_path):
    out, env = tmp_path / "out", device_like_env(tmp_path)
    done = gpu_run(str(out), "--dry-run", env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    files = sorted(p.name for p in out.iterdir())
    assert files == ["logs.tar.gz", "results.json", "seeds.csv", "summary.txt", "verdict.json", "verdict.md"]
    summary = (out / "summary.txt").read_text()
    assert done.stdout.endswith(summary), "the summary is printed last"
    results = json.loads((out / "results.json").read_text())
    assert {name: step["status"] for name, step in results["steps"].items()} == \
        {"checks": "ok", "benchmark": "ok", "sweep": "ok"}
    assert re.fullmatch(r"\d+ skipped in [\d.]+s", results["pytest"])  # tests/gpu, on a CPU
    assert re.fullmatch(STAGE_LINE, results["stage"]), results["stage"]  # from the sweep's first training
    bench = results["benchmark"]["models"]["se"]
    assert set(bench) == {"seecam default (eager)", "tutorial, no workers"}
    assert all(row["img_per_s"] > 0 and 0 < row["peak_fraction"] < 1 for row in bench.values())

    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["seeds"] == 2 and set(verdict["per_seed"]) == {"0", "1"}
    with (out / "seeds.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["seed"] for row in rows] == ["0", "1"]
    for row in rows:
        seed = verdict["per_seed"][row["seed"]]
        assert (float(row["cnn"]), float(row["se"]), float(row["diff"])) == (seed["cnn"], seed["se"], seed["diff"])
    assert results["verdict"]["plain"] in summary
    with tarfile.open(out / "logs.tar.gz") as tar:
        logs = set(tar.getnames())
    assert {"logs/checks.log", "logs/benchmark.log", "logs/verdict.log", "logs/sweep-seed-1-evaluate.log",
            "logs/sweep-seed-0-train-cnn.log", "logs/sweep-seed-1-train-se.log"} <= logs

    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy2(REPO / "README.md", root / "README.md")
    written = subprocess.run(["python3", "bench/gpu_results.py", str(out), "--root", str(root)], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=60)
    assert written.returncode == 0, written.stderr
    readme = (root / "README.md").read_text()
    seeds = readme.split("<!-- gpu-run:seeds -->")[1].split("<!-- /gpu-run:seeds -->")[0]
    assert "DRY RUN" in seeds and results["verdict"]["plain"] in seeds
    for row in rows:
        assert f"| {row['seed']} | {100 * float(row['cnn']):.2f} | {100 * float(row['se']):.2f} |" in seeds
    benchmark = readme.split("<!-- gpu-run:benchmark -->")[1].split("<!-- /gpu-run:benchmark -->")[0]
    assert "| se | seecam default (eager) |" in benchmark and results["stage"] in benchmark
    assert sorted(p.name for p in (root / "docs/results/gpu").iterdir()) == \
        ["results.json", "seeds.csv", "summary.txt", "verdict.json", "verdict.md"]
    assert outside_blocks(readme) == outside_blocks((REPO / "README.md").read_text())


def outside_blocks(readme: str) -> str:
    """The README without what its <!-- gpu-run:... --> blocks hold."""
    return re.sub(r"(<!-- gpu-run:(\w+) -->\n).*?(<!-- /gpu-run:\2 -->)", r"\1\3", readme, flags=re.S)


def test_without_the_kit_or_a_gpu_the_command_stops_in_one_line_before_any_work(tmp_path):
    env = device_like_env(tmp_path)
    out = tmp_path / "out"
    done = gpu_run(str(out), env=env, timeout=120)
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "CIFAR10_ARCHIVE" in done.stderr
    done = gpu_run(str(out), env=env | {"CIFAR10_ARCHIVE": "/x.tar.gz", "CIFAR10_MD5": "0" * 32}, timeout=120)
    assert done.returncode == 2 and not out.exists()
    assert done.stderr.strip() == "error: no CUDA GPU is visible to python3: on a CPU, use --dry-run"
    out.mkdir()
    (out / "old.txt").write_text("")
    done = gpu_run(str(out), "--dry-run", env=env, timeout=120)
    assert done.returncode == 2 and "not an empty folder" in done.stderr


@pytest.fixture
def gpu_run_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_run", REPO / "bench" / "gpu_run.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_run", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("sweep_only", "budget", "planned"), [
    (False, 540, ["checks", "benchmark", "stage"]),  # the H200's ~8-min sweep does not fit beside them in 9 min
    (True, 540, ["sweep"]),
    (False, 3600, ["checks", "benchmark", "sweep"]),  # an hour: all of it, the stage line from the sweep
])
def test_the_plan_fits_the_budget_and_names_the_flag_for_the_sweep(tmp_path, monkeypatch, capsys, gpu_run_module,
                                                                   sweep_only, budget, planned):
    monkeypatch.setenv("CIFAR10_ARCHIVE", "/x/cifar-10-binary.tar.gz")
    monkeypatch.setenv("CIFAR10_MD5", "0" * 32)
    args = Namespace(dry_run=False, sweep_only=sweep_only, budget=budget, seeds=[0, 1, 2, 3, 4], jobs=10,
                     device="NVIDIA H200")
    (tmp_path / "out").mkdir()
    runner = gpu_run_module.Runner(args, tmp_path / "out", tmp_path / "scratch")
    assert [step.name for step in runner.plan()] == planned
    said = capsys.readouterr().out
    assert ("does not fit" in said and "--sweep-only" in said) == (planned == ["checks", "benchmark", "stage"])
    assert sum(step.estimate for step in runner.plan()) <= budget


def test_a_failed_sweep_stage_is_named_with_its_logs_last_line(tmp_path, capsys, gpu_run_module):
    """The bundle's summary says why a stage failed (the log's `error:` line), not only which log to open."""
    args = Namespace(dry_run=True, sweep_only=False, budget=540, seeds=[0, 1], jobs=2, device="cpu")
    (tmp_path / "out").mkdir()
    runner = gpu_run_module.Runner(args, tmp_path / "out", tmp_path / "scratch")
    runner.logs.mkdir(parents=True, exist_ok=True)
    sweep = gpu_run_module.Sweep(runner, {0: tmp_path, 1: tmp_path}, deadline=0)
    run = sweep.job(0, "train", ["stages/train.py", "se"])
    run.log.write_text("Traceback (most recent call last):\n  ...\nerror: se: loss became nan at epoch 1\n")
    run.returncode = 1
    sweep.finished(0, "se", run, [])
    assert "sweep: seed 0 se failed (exit 1; sweep-seed-0-train-se.log: error: se: loss became nan at epoch 1)" \
        in capsys.readouterr().out
