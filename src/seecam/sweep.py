"""`seecam sweep`: the same configuration trained once per seed, on DVC's own experiment queue.

One training run per model measures test-set noise only; how much SE - CNN moves when both are retrained
with another seed needs several seeds. Each seed is one `dvc exp run --queue -S seed=N [-S ...]`, so DVC
caches, names and tracks the experiments (`dvc exp show`, `dvc queue status/logs`), and both models train
in each exactly as `dvc repro` trains them. The experiments are named `seed-N-<hash>`, where the hash is the
configuration's identity (identity.sweep_digest of params.yaml with the -S overrides, the models swept and the
training code): two sweeps of different configurations never collide, and rerunning a sweep of the same
configuration is refused by DVC instead of silently duplicated.

A sweep trains every model of params.yaml, or the ones `--models` names (swept_models): a model trained for a
seed before, by the same code with the same params, comes back from DVC's run cache in seconds, so adding a
model and sweeping again trains the new one only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from seecam.code_version import PIPELINE, check_train_stages, stage_names, training_code_digest
from seecam.config_loader import read_yaml, shown
from seecam.errors import SeecamError
from seecam.identity import sweep_digest
from seecam.params import SEED_MAX, Params, parse_params
from seecam.paths import train_stage
from seecam.sweep_progress import DONE, SweepProgress
from seecam.tracking.store import find_experiment

if TYPE_CHECKING:
    import psutil

_SEEDS = re.compile(r"(\d+)(?:-(\d+))?")
POLL_SECONDS = 2.0
STALL_SECONDS = 120.0  # no queue worker alive this long while ours still wait: the workers died
WORKER_EXIT_SECONDS = 60.0  # for the stopped workers to exit; the first one cleans DVC's celery broker on its way


def parse_seeds(text: str) -> list[int]:
    """`0-4` -> [0, 1, 2, 3, 4]; `0,2,5` -> [0, 2, 5]; `3` -> [3]; ranges and lists combine (`0-2,7`)."""
    seeds: list[int] = []
    for part in text.split(","):
        match = _SEEDS.fullmatch(part.strip())
        if not match:
            raise SeecamError(f"--seeds: {shown(text)} is not a seed list; write e.g. 0-4, 0,2,5 or 3")
        first, last = int(match[1]), int(match[2] or match[1])
        if first > last:
            raise SeecamError(f"--seeds: range {shown(part.strip())} runs backwards; write it as {last}-{first}")
        if last > SEED_MAX:
            raise SeecamError(f"--seeds: {last} is out of range (seeds are 0..{SEED_MAX})")
        seeds += range(first, last + 1)
    if len(set(seeds)) != len(seeds):
        raise SeecamError(f"--seeds: {shown(text)} names a seed twice; each seed is one experiment")
    return seeds


def parse_overrides(overrides: list[str]) -> list[str]:
    """`-S key=value` overrides as DVC takes them; `seed` is the sweep's own axis, so it is refused here."""
    for override in overrides:
        key, equals, _ = override.partition("=")
        if not equals or not key:
            raise SeecamError(f"-S {shown(override)}: write key=value, e.g. -S train.epochs=3")
        if key == "seed":
            raise SeecamError("-S seed=...: the sweep sets the seed; choose seeds with --seeds")
    return overrides


def check_overrides(params_path: Path, overrides: list[str]) -> Params:
    """params.yaml with the overrides applied, validated now: a typo fails here, not in every queued experiment.

    Values are read as YAML, as `dvc exp run -S` reads them (`3` is an int, `tutorial` a string).
    """
    raw = read_yaml(params_path)
    for override in overrides:
        key, _, value = override.partition("=")
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SeecamError(f"-S {shown(override)}: {shown(part)} is a value, not a section of "
                                  f"{params_path.name}")
        try:
            node[last] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise SeecamError(f"-S {shown(override)}: the value is not YAML; quote it") from None
    return parse_params(raw, source=f"{params_path.name} with -S overrides")


def swept_models(params_path: Path, overrides: list[str], models: list[str] | None,
                 pipeline: Path) -> tuple[Params, list[str]]:
    """The params every experiment runs with, and what `dvc exp run` needs beside `-S seed=N` and the overrides:
    nothing for every model of params.yaml (`models` None); for the models named, DVC's override that deletes
    each other model's block (`-S ~models.<name>`, so evaluate, explain and the report cover the named ones
    alone) and every stage but the others' train_<name>, run `--single-item` (only if changed, with no check of
    the stages upstream: train_<name> of a model left out would fail on its missing block)."""
    params = check_overrides(params_path, overrides)
    args: list[str] = []
    if models is not None:
        baseline = params.evaluate.baseline
        twice = next((name for i, name in enumerate(models) if name in models[:i]), None)
        unknown = next((name for name in models if name not in params.models), None)
        if twice is not None:
            raise SeecamError(f"--models names {shown(twice)} twice")
        if unknown is not None:
            raise SeecamError(f"--models: {shown(unknown)} is not a model of {params_path.name} "
                              f"({', '.join(params.models)})")
        if len(models) < 2:
            raise SeecamError("--models must name at least two models (evaluate.baseline and a candidate)")
        if baseline not in models:
            raise SeecamError(f"--models must include evaluate.baseline ({baseline}): every candidate is compared "
                              "with it")
        left_out = [name for name in params.models if name not in models]
        params = replace(params, models={name: block for name, block in params.models.items() if name in models})
        stages = [stage for stage in stage_names(pipeline) if stage not in {train_stage(name) for name in left_out}]
        args = [arg for name in left_out for arg in ("-S", f"~models.{name}")] + ["--single-item", *stages]
    check_train_stages(params.models, pipeline)
    return params, args


def experiment_name(seed: int, digest: str) -> str:
    return f"seed-{seed}-{digest}"


def is_sweep_experiment(name: str) -> bool:
    """Whether a run's `dvc_exp_name` tag names one of a sweep's experiments (`seecam verdict` finds sweeps so)."""
    return re.fullmatch(r"seed-\d+-[0-9a-f]{6}", name) is not None


def dvc_command() -> str:
    """The dvc beside this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    found = str(beside) if beside.is_file() else shutil.which("dvc")
    if not found:
        raise SeecamError(f"dvc not found beside {sys.executable} or on PATH; put the folder that holds dvc on PATH "
                          "(the project's .venv/bin)")
    return found


def check_git_commit(root: Path) -> None:
    """`dvc exp` stores experiments as commits on top of the workspace's: there must be one."""
    head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        raise SeecamError("the workspace has no git commit, and dvc exp needs one; "
                          "run `git add -A && git commit -m baseline` first")


def dvc_env() -> dict[str, str]:
    """The environment for dvc: this interpreter's bin directory first on PATH.

    DVC's queue workers run `dvc`, and every stage runs `python`, from PATH. `.venv/bin/seecam sweep` in a shell
    without the venv active started workers that died at once (no `dvc`), and the sweep waited forever.
    """
    return os.environ | {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def threads_per_worker(workers: int) -> int:
    """Each of `workers` processes training side by side gets its share of the cores, at least one thread.

    torch starts an OpenMP thread per core in every process, so N such processes contend for the same cores:
    two demo-size SE trainings side by side on 2 cores took 63-81 s with a thread per core each, 32 s with one
    thread each, against about 43 s one after the other (measured).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)


def worker_env(jobs: int) -> dict[str, str]:
    """dvc_env, with OMP_NUM_THREADS for `jobs` queue workers side by side; one set outside is kept."""
    env = dvc_env()
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(threads_per_worker(jobs))
    return env


def check_cache_dir(dvc: str, root: Path) -> None:
    """The DVC cache path is ASCII: DVC 3.67's queue writes it into each experiment's `.dvc/config.local`
    through configobj, which encodes ASCII only, so under a folder like `my project é/` every queued experiment
    fails at setup (a UnicodeEncodeError in the celery worker's log, none in `dvc queue logs`)."""
    cache = _dvc(dvc, root, "cache", "dir").stdout.strip()
    if not cache.isascii():
        raise SeecamError(f"DVC's experiment queue cannot use a cache at a non-ASCII path ({cache}): it writes that "
                          "path as ASCII and every queued experiment would fail at setup; give it an ASCII one "
                          "(`dvc cache dir --local /path/to/cache`) or clone into an ASCII path")


def _dvc(dvc: str, root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run dvc, its output read from files, not pipes: `dvc queue start` forks queue workers that keep its stdout
    and stderr, and reading a pipe to its end waited for the last worker to exit, so the sweep sat silent until
    every experiment had ended."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        code = subprocess.run([dvc, *args], cwd=root, stdout=out, stderr=err, env=env or dvc_env()).returncode
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess([dvc, *args], code, out.read(), err.read())
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit code {result.returncode}"
        raise SeecamError(f"`dvc {' '.join(args)}` failed: {reason}")
    return result


def queue(dvc: str, root: Path, seeds: list[int], overrides: list[str], args: list[str], digest: str) -> list[str]:
    """Queue one `dvc exp run` per seed, named by `digest` (sweep_digest), with `args` (swept_models' and the
    stage targets); return the experiment names."""
    names = []
    for seed in seeds:
        name = experiment_name(seed, digest)
        sets = [arg for override in overrides for arg in ("-S", override)]
        _dvc(dvc, root, "exp", "run", "--queue", "-n", name, "-S", f"seed={seed}", *sets, *args)
        names.append(name)
    return names


def queue_states(status_text: str, names: list[str]) -> dict[str, str]:
    """Name -> status of our experiments in `dvc queue status` output (columns: Task Name Created Status)."""
    states = {}
    for line in status_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] in names:
            states[fields[1]] = fields[-1]
    return states


def workers_alive(status_text: str) -> bool:
    """Whether `dvc queue status` reports a worker, active or idle (last line: "Worker status: 0 active, 0 idle")."""
    match = re.search(r"Worker status: (\d+) active, (\d+) idle", status_text)
    return match is None or int(match[1]) + int(match[2]) > 0


def experiment_running(names: list[str]) -> bool:
    """Whether a stage of one of the experiments `names` runs: DVC gives each stage command DVC_EXP_NAME.

    `dvc queue status` asks the workers over celery (filesystem broker) with a 1 s timeout: a lone worker busy
    with the sweep's last experiment missed every reply for minutes on a loaded machine, and the sweep called
    the workers stopped while that experiment was training. Its stage's process says that it runs.
    """
    import psutil

    for process in psutil.process_iter():
        try:
            if process.environ().get("DVC_EXP_NAME") in names:
                return True
        except psutil.Error:
            continue
    return False


def wait(dvc: str, root: Path, names: list[str], jobs: int, progress: SweepProgress, poll: float = POLL_SECONDS,
         stall: float = STALL_SECONDS) -> dict[str, str]:
    """Start `jobs` queue workers, wait until every named experiment succeeded or failed, stop the workers and
    wait for them to exit; `progress` says what happens meanwhile.

    Workers that are gone while experiments still wait are an error after `stall` seconds, not an endless wait.
    """
    _dvc(dvc, root, "queue", "start", "-j", str(jobs), env=worker_env(jobs))  # the workers inherit it
    progress.started(jobs)
    alive = time.monotonic()
    try:
        while True:
            status = _dvc(dvc, root, "queue", "status").stdout
            states = queue_states(status, names)
            progress.update(states)
            if len(states) == len(names) and all(state in DONE for state in states.values()):
                break
            if workers_alive(status) or experiment_running(names):
                alive = time.monotonic()
            elif time.monotonic() - alive > stall:
                waiting = [name for name in names if states.get(name) not in DONE]
                raise SeecamError(f"the DVC queue workers stopped with {len(waiting)} experiment(s) still waiting "
                                  f"({', '.join(waiting)}); `dvc queue start -v` shows why", exit_code=1)
            time.sleep(poll)
    finally:
        progress.close()
        # the workers exit once the queue is empty; stopping covers an interrupted wait or others' tasks
        subprocess.run([dvc, "queue", "stop"], cwd=root, capture_output=True, env=dvc_env())
    # `dvc queue stop` returns before the workers exit: the sweep is done when nothing of it still writes in .dvc/
    import psutil

    psutil.wait_procs(queue_workers(root), timeout=WORKER_EXIT_SECONDS)
    return states


def queue_workers(root: Path) -> list[psutil.Process]:
    """DVC's queue processes of the repo at `root` still alive, all started in its root: each worker
    (`dvc exp queue-worker`) and the forked `dvc queue start` that waits on it to record its end."""
    import psutil

    def of_queue(command: list[str]) -> bool:
        return "queue-worker" in command or ("queue" in command and "start" in command)

    return [process for process in psutil.process_iter(["cmdline", "cwd"])
            if of_queue(process.info["cmdline"] or []) and process.info["cwd"] is not None
            and Path(process.info["cwd"]) == root.resolve()]


def swept_config_sha(params: Params, digest: str) -> str | None:
    """The config_sha the sweep's runs were tagged with (tag dvc_exp_name `seed-N-<digest>`), None before any."""
    import mlflow

    experiment_id = find_experiment(params.tracking)
    if experiment_id is None:
        return None
    runs = mlflow.MlflowClient().search_runs([experiment_id], f"tags.dvc_exp_name LIKE 'seed-%-{digest}'",
                                             max_results=1)
    return runs[0].data.tags.get("config_sha") if runs else None


def next_commands(names: list[str], config_sha: str | None, other_workspace: bool,
                  queued_for: int | None = None, candidate: str | None = None) -> list[str]:
    """What to type after the sweep, each with why: run the queue (`queued_for` workers), the verdict, the report.

    `other_workspace`: the -S overrides make the sweep's configuration differ from the workspace's, so the
    report shows the verdict only after `dvc exp apply` brings one of the sweep's experiments in; that goes
    first, since it also restores the experiment's reports/ (its verdict.json among them). `candidate`: the
    model the verdict compares with the baseline, where params.yaml has several to choose from.
    """
    steps = []
    if queued_for is not None:
        steps += [(f"dvc queue start -j {queued_for}", f"runs the {len(names)} experiments"),
                  ("dvc queue status", f"until all {len(names)} show Success")]
    if other_workspace:
        steps.append((f"dvc exp apply {names[0]}", "this configuration's params and outputs into the workspace"))
    chosen = f" --candidate {candidate}" if candidate else ""
    if config_sha is None:
        steps.append((f"seecam verdict{chosen}", "pools the latest sweep's seeds from MLflow"))
    else:
        steps.append((f"seecam verdict --config-sha {config_sha}{chosen}",
                      f"pools these {len(names)} seeds from MLflow"))
    steps.append(("dvc repro report", "puts the verdict on top of reports/index.html"))
    return [f"{command:<46} # {why}" for command, why in steps]


def sweep(root: Path, seeds: list[int], overrides: list[str], targets: list[str], jobs: int, run: bool,
          models: list[str] | None = None) -> None:
    """Queue the sweep of every model, or of `models`; with `run`, run it on `jobs` workers to the end and fail
    (exit 1) if any experiment failed.

    Either way it prints the exact commands that follow; after a run, with the sweep's config_sha.
    """
    if jobs < 1:
        raise SeecamError(f"-j must be >= 1 (queue workers), got {jobs}")
    if models is not None and targets:
        raise SeecamError("pass stage targets or --models, not both: --models chooses the stages")
    dvc = dvc_command()
    check_git_commit(root)
    overrides = parse_overrides(overrides)
    params, args = swept_models(root / "params.yaml", overrides, models, root / PIPELINE)
    workspace = check_overrides(root / "params.yaml", [])
    other_workspace = check_overrides(root / "params.yaml", overrides) != workspace
    candidate = params.candidates[0] if len(workspace.candidates) > 1 else None  # the verdict needs one named
    check_cache_dir(dvc, root)
    digest = sweep_digest(params, training_code_digest(params.models, root / PIPELINE))
    names = queue(dvc, root, seeds, overrides, args + targets, digest)
    print(f"queued {len(names)} experiments: {', '.join(names)}")
    if not run:
        print("next:", *next_commands(names, None, other_workspace, queued_for=jobs, candidate=candidate),
              sep="\n  ")
        return
    states = wait(dvc, root, names, jobs, SweepProgress(names, list(params.models), params.train.epochs,
                                                        params.tracking))
    failed = [name for name, state in states.items() if state != "Success"]
    if failed:
        raise SeecamError(f"{len(failed)} of {len(names)} experiments failed ({', '.join(failed)}); "
                          f"see `dvc queue logs {failed[0]}`", exit_code=1)
    sha = swept_config_sha(params, digest)
    print(f"all {len(names)} experiments succeeded; config_sha {sha or 'unknown (no new MLflow runs)'}")
    print("next:", *next_commands(names, sha, other_workspace, candidate=candidate), sep="\n  ")
