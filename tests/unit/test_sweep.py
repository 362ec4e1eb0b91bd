import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import GIT_IDENTITY, REPO
from seecam.cli import main
from seecam.errors import SeecamError
from seecam.identity import sweep_digest
from seecam.params import parse_params
from seecam.sweep import (
    check_cache_dir,
    check_git_commit,
    check_overrides,
    dvc_command,
    dvc_env,
    experiment_name,
    experiment_running,
    is_sweep_experiment,
    next_commands,
    parse_overrides,
    parse_seeds,
    queue_states,
    sweep,
    swept_config_sha,
    swept_models,
    threads_per_worker,
    worker_env,
    workers_alive,
)


@pytest.mark.parametrize(("text", "seeds"), [
    ("0-4", [0, 1, 2, 3, 4]), ("0,2,5", [0, 2, 5]), ("3", [3]), ("0-2, 7", [0, 1, 2, 7]), ("4294967295", [2**32 - 1]),
])
def test_seed_lists(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(("text", "message"), [
    ("", "is not a seed list; write e.g. 0-4, 0,2,5 or 3"), ("a-b", "is not a seed list"), ("-1", "is not a seed list"),
    ("1,,2", "is not a seed list"), ("4-2", "range '4-2' runs backwards; write it as 2-4"),
    ("0-4294967296", "4294967296 is out of range (seeds are 0..4294967295)"), ("1,0-2", "names a seed twice"),
])
def test_bad_seed_lists_say_what_to_write(text, message):
    with pytest.raises(SeecamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_seeds(text)


def test_bad_seeds_exit_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--seeds", "4-2"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: --seeds: range '4-2' runs backwards; write it as 2-4\n"


@pytest.mark.parametrize(("override", "message"), [
    ("train.epochs", "write key=value"), ("=3", "write key=value"), ("seed=3", "the sweep sets the seed"),
])
def test_bad_overrides(override, message):
    with pytest.raises(SeecamError, match=message):
        parse_overrides([override])


def test_overrides_are_checked_against_the_params_schema_before_queueing(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 1\ntrain:\n  epochs: 2\n")
    checked = check_overrides(tmp_path / "params.yaml", ["train.epochs=3", "train.normalize=tutorial"])
    assert checked.train.epochs == 3 and checked.train.normalize == "tutorial" and checked.seed == 1
    with pytest.raises(SeecamError, match="params.yaml with -S overrides: train.normalize must be one of"):
        check_overrides(tmp_path / "params.yaml", ["train.normalize=imagenet"])
    with pytest.raises(SeecamError, match="train.epoch"):
        check_overrides(tmp_path / "params.yaml", ["train.epoch=3"])
    with pytest.raises(SeecamError, match="-S 'seed.x=1': 'seed' is a value, not a section of params.yaml"):
        check_overrides(tmp_path / "params.yaml", ["seed.x=1"])


def test_names_tell_configurations_apart_by_their_identity(tmp_path):
    """The names' digest is identity.sweep_digest of params.yaml with the overrides: training inputs only."""
    (tmp_path / "params.yaml").write_text("seed: 1\n")

    def name(*overrides: str, code: str = "code1") -> str:
        return experiment_name(0, sweep_digest(check_overrides(tmp_path / "params.yaml", list(overrides)), code))

    same = name("train.epochs=3")
    assert is_sweep_experiment(same) and same.startswith("seed-0-") and same == name("train.epochs=3")
    assert same not in {name("train.epochs=4"), name("train.epochs=3", code="code2")}
    assert same == name("train.epochs=3", "evaluate.bootstrap_samples=10")  # changes no trained weight


THREE = """models:
  cnn: {kind: cnn}
  se: {kind: se}
  se8: {kind: se, reduction: 8}
"""


def with_train_se8(folder: Path) -> Path:
    """The repo's dvc.yaml with a train_se8 stage, as README's "Add a model variant" adds it."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    stages = list(pipeline["stages"].items())
    se8 = yaml.safe_load(yaml.safe_dump(pipeline["stages"]["train_se"]).replace("models.se", "models.se8")
                         .replace("/se/", "/se8/").replace("se.pt", "se8.pt").replace("train.py se", "train.py se8"))
    pipeline["stages"] = dict([*stages[:3], ("train_se8", se8), *stages[3:]])
    (folder / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return folder / "dvc.yaml"


def test_a_sweep_of_the_models_named_leaves_the_others_out_of_its_experiments(tmp_path):
    """Issue 25: `--models cnn,se8` trains those two per seed. Each experiment's params.yaml has only their blocks
    (`-S ~models.se`, DVC's override that deletes a key), so evaluate, explain and the report cover them alone,
    and DVC runs every stage but train_se, each only if changed (`--single-item`: no stage upstream of the
    named ones, train_se among them, is checked)."""
    (tmp_path / "params.yaml").write_text(THREE)
    pipeline = with_train_se8(tmp_path)
    params, args = swept_models(tmp_path / "params.yaml", [], ["cnn", "se8"], pipeline)
    assert list(params.models) == ["cnn", "se8"]
    assert args == ["-S", "~models.se", "--single-item", "download", "train_cnn", "train_se8", "evaluate", "explain",
                    "report"]
    everything, args = swept_models(tmp_path / "params.yaml", ["train.epochs=3"], None, pipeline)
    assert list(everything.models) == ["cnn", "se", "se8"] and everything.train.epochs == 3 and args == []


@pytest.mark.parametrize(("models", "message"), [
    (["se", "se8"], "--models must include evaluate.baseline (cnn): every candidate is compared with it"),
    (["cnn"], "--models must name at least two models (evaluate.baseline and a candidate)"),
    (["cnn", "se9"], "--models: 'se9' is not a model of params.yaml (cnn, se, se8)"),
    (["cnn", "se8", "cnn"], "--models names 'cnn' twice"),
])
def test_models_a_sweep_cannot_train_are_refused_before_queueing(tmp_path, models, message):
    (tmp_path / "params.yaml").write_text(THREE)
    with pytest.raises(SeecamError) as info:
        swept_models(tmp_path / "params.yaml", [], models, with_train_se8(tmp_path))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_model_without_its_train_stage_is_refused_naming_the_stage_to_add(tmp_path):
    (tmp_path / "params.yaml").write_text(THREE)
    with pytest.raises(SeecamError, match=r"^models.se8 has no train_se8 stage in .*dvc.yaml: add one \(README, "
                                          r"Add a model variant\), then `dvc repro`$"):
        swept_models(tmp_path / "params.yaml", [], None, REPO / "dvc.yaml")


def test_queue_status_is_read_by_experiment_name():
    status = ("Task     Name          Created    Status\n"
              "a1b2c3   seed-0-abc    02:00 PM   Success\n"
              "d4e5f6   seed-1-abc    02:01 PM   Failed\n"
              "0a0b0c   other         02:02 PM   Running\n\n"
              "Worker status: 0 active, 0 idle\n")
    assert queue_states(status, ["seed-0-abc", "seed-1-abc"]) == {"seed-0-abc": "Success", "seed-1-abc": "Failed"}


def test_a_workspace_without_a_commit_is_refused_and_the_command_it_names_fixes_it(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    with pytest.raises(SeecamError, match="no git commit, and dvc exp needs one; run `git add -A && git") as info:
        check_git_commit(tmp_path)
    [command] = re.findall(r"`([^`]+)`", str(info.value))
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, capture_output=True,
                   env=os.environ | GIT_IDENTITY)
    check_git_commit(tmp_path)


def test_zero_jobs_is_refused(tmp_path):
    with pytest.raises(SeecamError, match="-j must be >= 1"):
        sweep(tmp_path, [0], [], [], 0, True)


def test_no_dvc_is_one_line_and_the_fix_it_names_works(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SeecamError) as info:
        dvc_command()
    assert str(info.value) == (f"dvc not found beside {tmp_path / 'python'} or on PATH; put the folder that holds "
                               "dvc on PATH (the project's .venv/bin)")
    monkeypatch.setenv("PATH", f"{REPO / '.venv/bin'}{os.pathsep}{tmp_path}")
    assert Path(dvc_command()).resolve() == (REPO / ".venv/bin/dvc").resolve()


NAMES = ["seed-0-abc123", "seed-1-abc123", "seed-2-abc123"]


def test_a_finished_sweep_names_its_config_sha_and_the_exact_next_commands():
    assert next_commands(NAMES, "1234567890abcdef", other_workspace=False) == [
        "seecam verdict --config-sha 1234567890abcdef   # pools these 3 seeds from MLflow",
        "dvc repro report                               # puts the verdict on top of reports/index.html",
    ]
    assert next_commands(NAMES, "1234567890abcdef", other_workspace=True) == [
        "dvc exp apply seed-0-abc123                    # this configuration's params and outputs into the workspace",
        "seecam verdict --config-sha 1234567890abcdef   # pools these 3 seeds from MLflow",
        "dvc repro report                               # puts the verdict on top of reports/index.html",
    ]


def test_a_queued_sweep_says_how_to_run_it_first():
    assert next_commands(NAMES, None, other_workspace=False, queued_for=2) == [
        "dvc queue start -j 2                           # runs the 3 experiments",
        "dvc queue status                               # until all 3 show Success",
        "seecam verdict                                 # pools the latest sweep's seeds from MLflow",
        "dvc repro report                               # puts the verdict on top of reports/index.html",
    ]


def test_the_config_sha_of_a_sweep_is_read_back_from_its_runs(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = parse_params({"tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"}})
    assert swept_config_sha(params, "abc123") is None  # nothing trained yet
    mlflow.set_tracking_uri(params.tracking.uri)
    experiment = mlflow.create_experiment("seecam", artifact_location=(tmp_path / "art").as_uri())
    for name, sha in (("seed-0-abc123", "1234567890abcdef"), ("seed-0-fff000", "fedcba0987654321")):
        with mlflow.start_run(experiment_id=experiment, tags={"dvc_exp_name": name, "config_sha": sha}):
            pass
    assert swept_config_sha(params, "abc123") == "1234567890abcdef"


def test_dvc_and_its_queue_workers_find_this_interpreters_tools_first(monkeypatch):
    """`.venv/bin/seecam sweep` without the venv active: workers run `dvc` and stages run `python` from PATH."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert dvc_env()["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin", "/bin"]


def test_queue_workers_share_the_cores_unless_told_otherwise(monkeypatch):
    """Each of -j N workers trains with cores // N threads: N processes with a thread per core contend."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert threads_per_worker(1) == cores and threads_per_worker(2) == max(1, cores // 2)
    assert "OMP_NUM_THREADS" not in worker_env(1)
    assert worker_env(2)["OMP_NUM_THREADS"] == str(max(1, cores // 2))
    assert worker_env(cores + 1)["OMP_NUM_THREADS"] == "1"
    assert worker_env(2)["PATH"] == dvc_env()["PATH"]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_env(2)["OMP_NUM_THREADS"] == "3"


def test_workers_that_are_gone_are_seen_in_the_queue_status():
    assert not workers_alive("Task  Name  Created  Status\nab  seed-0-abc  02:00 PM  Queued\n\n"
                             "Worker status: 0 active, 0 idle\n")
    assert workers_alive("Worker status: 1 active, 0 idle\n") and workers_alive("Worker status: 0 active, 2 idle\n")


def test_an_experiment_whose_stage_runs_is_seen_while_the_queue_status_misses_its_worker():
    """`dvc queue status` asks the workers over celery with a 1 s timeout; on a loaded machine a lone worker,
    busy with the sweep's last experiment, missed every reply for 120 s and the sweep failed it as stopped
    ("the DVC queue workers stopped with 1 experiment(s) still waiting"). A stage of it runs: it is alive."""
    stage = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             env=os.environ | {"DVC_EXP_NAME": "seed-2-abc123"})
    try:
        assert experiment_running(["seed-1-abc123", "seed-2-abc123"])
        assert not experiment_running(["seed-0-abc123"])
    finally:
        stage.kill()
        stage.wait()
    assert not experiment_running(["seed-2-abc123"])


def test_a_non_ascii_cache_path_is_refused_before_queueing_with_the_fix(tmp_path):
    """DVC 3.67's queue writes the cache path into each experiment's config as ASCII: in a clone under
    `my project é/` every queued experiment failed at setup, with no log. An ASCII cache path works."""
    root = tmp_path / "my project é"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc = dvc_command()
    subprocess.run([dvc, "init", "-q"], cwd=root, check=True)
    with pytest.raises(SeecamError) as caught:
        check_cache_dir(dvc, root)
    assert str(caught.value) == (
        f"DVC's experiment queue cannot use a cache at a non-ASCII path ({root}/.dvc/cache): it writes that path "
        "as ASCII and every queued experiment would fail at setup; give it an ASCII one "
        "(`dvc cache dir --local /path/to/cache`) or clone into an ASCII path")
    subprocess.run([dvc, "cache", "dir", "--local", str(tmp_path / "cache")], cwd=root, check=True)
    check_cache_dir(dvc, root)
