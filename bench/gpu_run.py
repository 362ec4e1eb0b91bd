"""One command for a GPU machine: every GPU figure and the real-data seed verdict, as one results bundle.

    bash ../shared/gpu/prepare.sh                                          # here, once: fills .gpu/
    bash .gpu/on-device.sh 'python3 bench/gpu_run.py $OUT'                 # there: checks, benchmark, a stage
    bash .gpu/on-device.sh 'python3 bench/gpu_run.py $OUT --sweep-only'    # there: the sweep and the verdict
    python3 bench/gpu_run.py /tmp/bundle --dry-run                         # here: the same, tiny, on the CPU

Steps, cheap first, each with its own timeout inside one budget (--budget, 9 minutes: the machine runs one
command of at most 10), printing progress as they go:
  checks     `python3 -m pytest tests/gpu`: its summary line;
  benchmark  `bench/train_throughput.py --device cuda`: seconds per epoch of the default (compiled), eager and
             the tutorial's loop, medians, each beside the fraction of the GPU's matmul peak;
  stage      `stages/train.py cnn` for 3 epochs of real data: the stage's timing line (startup / compile /
             epochs / outputs), unless the sweep runs too: then its first training's log gives it;
  sweep      5 seeds x params.yaml's models x its params (50 epochs) on real data, all trainings at once, then
             `seecam verdict`. There is no dvc there, so it takes docs/results.md's path for a machine without DVC:
             the stage scripts, each seed in its own scratch copy (one data folder and one SQLite MLflow store
             shared by all), `stages/evaluate.py` once a seed's trainings are done (a stage that stops on
             SQLite's `database is locked` is rerun: it resumes from its checkpoint).
A step runs only when its estimate (measured on one H200) fits what is left of the budget: the sweep (about 8
minutes) does not fit beside the others, so the plain run says so, and `--sweep-only` runs it alone. With
--dry-run the same steps run on a CPU, on tiny synthetic data.

The bundle in OUT, rewritten after every step (a timeout or a kill keeps what was done), at most 8 files:
summary.txt (printed last), results.json (every figure; bench/gpu_results.py turns it into the README's tables
and docs/results/), verdict.json, verdict.md, seeds.csv (the per-seed table) and logs.tar.gz (every log).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from seecam.atomic import write_json, write_text  # noqa: E402  (stdlib only: no torch in this process)

PYTHON = "python3"  # the one on PATH, as on the GPU machine
BUDGET_SECONDS = 540
LOCKED = "database is locked"
STAGE_LINE = re.compile(r"^\w+: startup [\d.]+ s, compile [\d.]+ s, epochs [\d.]+ s, outputs [\d.]+ s$", re.M)
EPOCH_LINE = re.compile(r"^(\w+) epoch (\d+)/(\d+):", re.M)


@dataclass(frozen=True)
class Step:
    """A step's estimate (what it took on one H200; --dry-run: on 2 busy CPU cores) and its own cap."""

    name: str
    estimate: float
    cap: float


GPU_STEPS = (Step("checks", 90, 150), Step("benchmark", 240, 300), Step("stage", 90, 150), Step("sweep", 480, 600))
DRY_STEPS = (Step("checks", 15, 120), Step("benchmark", 45, 240), Step("stage", 20, 120), Step("sweep", 60, 300))
# What each run's params.yaml changes (a scratch copy's; the checkout's own is never touched).
DRY_PARAMS = {"data": {"source": "synthetic", "val_size": 100,
                       "synthetic": {"train_size": 600, "test_size": 200, "seed": 0}}, "train": {"epochs": 1}}
STAGE_EPOCHS = 3


@dataclass
class Bundle:
    """OUT's files, rewritten whole after every change, so whatever stops this run leaves a readable bundle."""

    out: Path
    logs: Path
    lines: list[str] = field(default_factory=list)
    results: dict = field(default_factory=lambda: {"steps": {}})

    def say(self, line: str) -> None:
        """A line of the summary, printed now too."""
        print(line, flush=True)
        self.lines.append(line)
        self.save()

    def save(self) -> None:
        write_text(self.out / "summary.txt", "\n".join(self.lines) + "\n")
        write_json(self.out / "results.json", self.results)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(self.logs, arcname="logs")
        (self.out / "logs.tar.gz.tmp").write_bytes(buffer.getvalue())
        (self.out / "logs.tar.gz.tmp").replace(self.out / "logs.tar.gz")


@dataclass
class Run:
    """One command line of a step, its log and, once it ended, its exit code (None: still running or cut)."""

    argv: list[str]
    cwd: Path
    log: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    returncode: int | None = None
    tries: int = 0

    def start(self) -> None:
        self.tries += 1
        with self.log.open("a") as log:  # the child keeps its own descriptor
            log.write(f"$ {' '.join(self.argv)}  (cwd {self.cwd}, try {self.tries})\n")
            log.flush()
            self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self) -> bool:
        """True once it has ended."""
        if self.process is not None and self.returncode is None:
            self.returncode = self.process.poll()
        return self.returncode is not None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)  # its own session: the stage's children (compile workers) go too
            self.process.wait()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def last_line(self) -> str:
        """Its log's last line: a failed stage's one `error:` line, or a traceback's last."""
        lines = self.text().strip().splitlines()
        return lines[-1][:300] if lines else "(empty log)"

    def wait(self, timeout: float) -> bool:
        """Run to the end within `timeout` seconds; False (and stopped) if it did not."""
        self.start()
        try:
            self.process.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            self.stop()
            return False
        return self.poll()


class Runner:
    """The steps in order inside the budget, each under min(its cap, what is left)."""

    def __init__(self, args: argparse.Namespace, out: Path, scratch: Path) -> None:
        self.args, self.scratch = args, scratch
        self.began = time.monotonic()
        self.logs = scratch / "logs"
        self.logs.mkdir(parents=True)
        self.bundle = Bundle(out, self.logs)
        self.env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.env.pop("MLFLOW_TRACKING_URI", None)  # the sweep's store is its own
        epochs = merged(yaml.safe_load((ROOT / "params.yaml").read_text()), self.data_params())["train"]["epochs"]
        self.bundle.results |= {"dry_run": args.dry_run, "device": args.device, "data": self.data_name(),
                                "epochs": epochs, "seeds": args.seeds}

    def left(self) -> float:
        return self.args.budget - (time.monotonic() - self.began)

    def plan(self) -> list[Step]:
        """The steps whose estimates fit the budget, in order; each one left out is said, with how to run it."""
        steps = [s for s in (DRY_STEPS if self.args.dry_run else GPU_STEPS)
                 if not self.args.sweep_only or s.name == "sweep"]
        chosen, total = [], 0.0
        for step in steps:
            if total + step.estimate <= self.args.budget:
                chosen.append(step)
                total += step.estimate
                continue
            alone = ("run it alone: `python3 bench/gpu_run.py OUT --sweep-only`" if step.name == "sweep"
                     else "give it a larger --budget")
            self.bundle.say(f"plan: the {step.name} (~{step.estimate / 60:.1f} min) does not fit beside "
                            f"{' + '.join(s.name for s in chosen) or 'nothing'} (~{total / 60:.1f} min) in the "
                            f"{self.args.budget / 60:.1f}-min budget; {alone}")
        if {"stage", "sweep"} <= {s.name for s in chosen}:
            chosen = [s for s in chosen if s.name != "stage"]
            self.bundle.say("plan: the stage's timing line comes from the sweep's first training")
        self.bundle.say(f"plan: {', '.join(f'{s.name} (~{s.estimate:.0f} s)' for s in chosen)}; "
                        f"budget {self.args.budget:.0f} s")
        return chosen

    def run(self) -> None:
        for step in self.plan():
            timeout = min(step.cap, self.left())
            if timeout < 10:
                self.record(step.name, "skipped", 0.0, "no time left in the budget")
                continue
            print(f"{step.name}: starting ({timeout:.0f} s at most)", flush=True)
            began = time.monotonic()
            status, line = getattr(self, step.name)(timeout)
            self.record(step.name, status, time.monotonic() - began, line)

    def record(self, name: str, status: str, seconds: float, line: str) -> None:
        self.bundle.results["steps"][name] = {"status": status, "seconds": round(seconds, 1), "line": line}
        self.bundle.say(f"{name}: {status} in {seconds:.0f} s: {line}")

    def command(self, name: str, argv: list[str], timeout: float, cwd: Path = ROOT) -> tuple[str, Run]:
        run = Run(argv, cwd, self.logs / f"{name}.log", self.env | {"PYTHONPATH": self.pythonpath(cwd)})
        if not run.wait(timeout):
            return "timed out", run
        return ("ok" if run.returncode == 0 else f"failed (exit {run.returncode})"), run

    def pythonpath(self, cwd: Path) -> str:
        """The checkout's (or scratch copy's) src first, so `python3 -m seecam.cli` runs the code under test."""
        return os.pathsep.join(filter(None, [str(cwd / "src"), self.env.get("PYTHONPATH", "")]))

    def checks(self, timeout: float) -> tuple[str, str]:
        status, run = self.command("checks", [PYTHON, "-m", "pytest", "tests/gpu", "-q", "-p", "no:cacheprovider"],
                                   timeout)
        last = [line for line in run.text().splitlines() if line.strip()][-1:]
        if status == "failed (exit 5)":  # pytest: nothing collected
            status = "ok"
        self.bundle.results["pytest"] = last[0] if last else ""
        return status, last[0] if last else "(no output)"

    def benchmark(self, timeout: float) -> tuple[str, str]:
        figures = self.scratch / "benchmark.json"
        argv = [PYTHON, "bench/train_throughput.py", "--json", str(figures)]
        argv += (["--device", "cpu", "--per-epoch", "--headline", "--models", "se", "--images", "256", "--epochs", "2"]
                 if self.args.dry_run else ["--device", "cuda"])
        status, run = self.command("benchmark", argv, timeout)
        if figures.is_file():
            self.bundle.results["benchmark"] = json.loads(figures.read_text())
        lines = [line for line in run.text().splitlines() if line.startswith(("DEFAULT", "matmul peak"))]
        return status, "; ".join(lines) or "(no figures)"

    def stage(self, timeout: float) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        copy = self.project("stage", seed=0, extra={"train": {"epochs": STAGE_EPOCHS}})
        status, _ = self.command("stage-download", [PYTHON, "stages/download.py"], timeout, copy)
        if status != "ok":
            return status, "download failed (logs/stage-download.log)"
        status, run = self.command("stage-train-cnn", [PYTHON, "stages/train.py", "cnn"], deadline - time.monotonic(),
                                   copy)
        found = STAGE_LINE.findall(run.text())
        self.bundle.results["stage"] = found[-1] if found else ""
        return status, found[-1] if found else "(no timing line)"

    def project(self, name: str, seed: int, extra: dict | None = None) -> Path:
        """A scratch copy of what the stages run (stages/, src/, params.yaml, dvc.yaml: its deps key the code
        digest), with this run's data, seed and MLflow store in its params.yaml."""
        copy = self.scratch / name
        for folder in ("stages", "src"):
            shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        shutil.copy2(ROOT / "dvc.yaml", copy / "dvc.yaml")
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        for key, value in (self.data_params() | {"seed": seed} | {
                "tracking": {"uri": f"sqlite:///{self.scratch / 'mlflow.db'}"}}).items():
            params[key] = merged(params.get(key), value)
        for key, value in (extra or {}).items():
            params[key] = merged(params.get(key), value)
        (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return copy

    def data_name(self) -> str:
        if self.args.dry_run:
            return "synthetic data"
        return f"CIFAR-10 from {Path(os.environ['CIFAR10_ARCHIVE']).name} (md5 {os.environ['CIFAR10_MD5']})"

    def data_params(self) -> dict:
        if self.args.dry_run:
            return DRY_PARAMS
        return {"data": {"source": "cifar10", "url": os.environ["CIFAR10_ARCHIVE"], "md5": os.environ["CIFAR10_MD5"]}}

    def sweep(self, timeout: float) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        copies = {seed: self.project(f"seed-{seed}", seed) for seed in self.args.seeds}
        first = copies[self.args.seeds[0]]
        status, _ = self.command("sweep-download", [PYTHON, "stages/download.py"], deadline - time.monotonic(), first)
        if status != "ok":
            return status, "download failed (logs/sweep-download.log)"
        for copy in copies.values():  # one data folder for all: the stages only read it
            if copy != first:
                (copy / "data").mkdir(exist_ok=True)
                (copy / "data" / "cifar10").symlink_to(first / "data" / "cifar10")
        done = Sweep(self, copies, deadline).run()
        if len(done) < 2:
            return "failed", f"{len(done)} seed(s) evaluated; the verdict needs 2 (logs/sweep-*.log)"
        status, _ = self.command("verdict", [PYTHON, "-m", "seecam.cli", "verdict"], deadline - time.monotonic(),
                                 first)
        folder = first / "reports" / "verdict"
        if status != "ok" or not (folder / "verdict.json").is_file():
            return status, "the verdict failed (logs/verdict.log)"
        verdict = self.keep_verdict(folder)
        first_training = self.logs / f"sweep-seed-{self.args.seeds[0]}-train-cnn.log"
        found = STAGE_LINE.findall(first_training.read_text(errors="replace"))
        self.bundle.results.setdefault("stage", found[-1] if found else "")
        return "ok", f"{verdict['plain']}. {verdict['sentence']}"

    def keep_verdict(self, folder: Path) -> dict:
        """verdict.json and .md into the bundle, the per-seed table as seeds.csv; the verdict's essentials."""
        verdict = json.loads((folder / "verdict.json").read_text())
        for name in ("verdict.json", "verdict.md"):
            shutil.copy2(folder / name, self.bundle.out / name)
        baseline, candidate = verdict["baseline"], verdict["candidate"]
        rows = [{"seed": seed, baseline: row[baseline], candidate: row[candidate], "diff": row["diff"],
                 f"{baseline}_run": row["runs"].get(baseline, ""), f"{candidate}_run": row["runs"].get(candidate, "")}
                for seed, row in sorted(verdict["per_seed"].items(), key=lambda item: int(item[0]))]
        with (self.bundle.out / "seeds.csv").open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        self.bundle.results["verdict"] = {key: verdict.get(key) for key in (
            "plain", "sentence", "seeds", "baseline", "candidate", "acc_diff_mean", "acc_diff_t_low",
            "acc_diff_t_high", "config_sha")}
        return verdict


class Sweep:
    """Every seed's two trainings at once (--jobs at a time), each seed's evaluate as soon as both are done."""

    def __init__(self, runner: Runner, copies: dict[int, Path], deadline: float) -> None:
        self.runner, self.copies, self.deadline = runner, copies, deadline
        threads = max(1, (os.cpu_count() or 1) // runner.args.jobs)  # each process its share of the cores
        self.env = runner.env | {"OMP_NUM_THREADS": str(threads)}
        self.models = list(yaml.safe_load((ROOT / "params.yaml").read_text())["models"])  # params.yaml's, as dvc repro
        self.queue: deque[tuple[int, str, Run]] = deque(
            (seed, model, self.job(seed, "train", ["stages/train.py", model]))
            for seed in copies for model in self.models)
        self.trained: dict[int, set[str]] = {seed: set() for seed in copies}

    def job(self, seed: int, stage: str, script: list[str]) -> Run:
        copy = self.copies[seed]
        log = self.runner.logs / f"sweep-seed-{seed}-{stage}{'-' + script[1] if len(script) > 1 else ''}.log"
        return Run([PYTHON, *script], copy, log, self.env | {"PYTHONPATH": self.runner.pythonpath(copy)})

    def run(self) -> list[int]:
        """Seeds evaluated, in the order they were; stops every process at the deadline."""
        running: list[tuple[int, str, Run]] = []
        evaluated: list[int] = []
        shown = time.monotonic()
        while self.queue or running:
            if time.monotonic() > self.deadline:
                for _, _, run in running:
                    run.stop()
                self.runner.bundle.say(f"sweep: timed out with {len(running)} stage(s) running")
                break
            while self.queue and len(running) < self.runner.args.jobs:
                running.append(self.queue.popleft())
                running[-1][2].start()
            for item in [item for item in running if item[2].poll()]:
                running.remove(item)
                self.finished(*item, evaluated)
            if time.monotonic() - shown >= 30:
                shown = time.monotonic()
                self.progress(running, evaluated)
            time.sleep(0.5)
        return evaluated

    def finished(self, seed: int, model: str, run: Run, evaluated: list[int]) -> None:
        if run.returncode != 0 and LOCKED in run.text() and run.tries < 3:
            self.runner.bundle.say(f"sweep: seed {seed} {model} stopped on `{LOCKED}`: rerun (it resumes)")
            self.queue.appendleft((seed, model, run))
        elif run.returncode != 0:
            self.runner.bundle.say(f"sweep: seed {seed} {model} failed (exit {run.returncode}; {run.log.name}: "
                                   f"{run.last_line()})")
        elif model == "evaluate":
            evaluated.append(seed)
            self.runner.bundle.say(f"sweep: seed {seed} evaluated ({len(evaluated)}/{len(self.copies)})")
        else:
            self.trained[seed].add(model)
            if self.trained[seed] == set(self.models):  # all trained: evaluate goes first in the queue
                self.queue.appendleft((seed, "evaluate", self.job(seed, "evaluate", ["stages/evaluate.py"])))

    def progress(self, running: list[tuple[int, str, Run]], evaluated: list[int]) -> None:
        epochs = [m[-1] for _, model, run in running if model != "evaluate" and (m := EPOCH_LINE.findall(run.text()))]
        at = f"trainings at epochs {min(int(e) for _, e, _ in epochs)}-{max(int(e) for _, e, _ in epochs)}/" \
             f"{epochs[0][2]}" if epochs else "trainings starting"
        print(f"sweep: {len(running)} running, {at}; {len(evaluated)}/{len(self.copies)} seeds evaluated; "
              f"{self.runner.left():.0f} s of the budget left", flush=True)


def merged(base: object, override: object) -> object:
    """`override` laid over `base`, key by key for dicts."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in override.items()}}
    return override


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the bundle's folder ($OUT on the GPU machine)")
    parser.add_argument("--sweep-only", action="store_true", help="the sweep and the verdict alone")
    parser.add_argument("--dry-run", action="store_true", help="on a CPU, tiny synthetic data: every step, end to end")
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="seconds for all steps (default 540)")
    parser.add_argument("--seeds", default=None, help="sweep seeds, e.g. 0-4 (default; --dry-run: 0-1)")
    parser.add_argument("--jobs", type=int, default=None, help="stages at once (default: all trainings; dry run 2)")
    args = parser.parse_args(argv)
    first, _, last = (args.seeds or ("0-1" if args.dry_run else "0-4")).partition("-")
    args.seeds = list(range(int(first), int(last or first) + 1))
    args.jobs = args.jobs or (2 if args.dry_run else 2 * len(args.seeds))
    args.device = "cpu"
    problem = preflight(args)
    if problem:
        parser.exit(2, f"error: {problem}\n")
    return args


def preflight(args: argparse.Namespace) -> str | None:
    """What stops a run before any work, in one line, or None."""
    if len(args.seeds) < 2:
        return "--seeds: the verdict needs 2 seeds or more, e.g. 0-4"
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        return f"{args.out} is not an empty folder: the bundle's 8 files need one of their own"
    if args.dry_run:
        return None
    if not (os.environ.get("CIFAR10_ARCHIVE") and os.environ.get("CIFAR10_MD5")):
        return ("CIFAR10_ARCHIVE and CIFAR10_MD5 are not set: run it through `bash .gpu/on-device.sh` "
                "(../shared/gpu/README.md), or set them to a CIFAR-10 binary archive and its md5")
    found = subprocess.run([PYTHON, "-c", "import torch; print(torch.cuda.get_device_name())"], capture_output=True,
                           text=True)
    if found.returncode != 0:
        return "no CUDA GPU is visible to python3: on a CPU, use --dry-run"
    args.device = found.stdout.strip()
    return None


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seecam-gpu-run-") as scratch:
        runner = Runner(args, args.out, Path(scratch))
        try:
            runner.run()
        finally:
            runner.bundle.say(f"done in {time.monotonic() - runner.began:.0f} s; bundle: "
                              f"{', '.join(sorted(p.name for p in args.out.iterdir()))}")
    print("\n--- summary ---\n" + (args.out / "summary.txt").read_text(), end="", flush=True)
    if any(step["status"] != "ok" for step in runner.bundle.results["steps"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
