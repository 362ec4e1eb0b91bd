"""Every message that names a command to run: the repo is put in that state for real, the command the line names
is run as a user would type it, and the problem is gone.

One copy of the shared trained pipeline serves them all; each test leaves it as it found it. The lines come
from the library calls that the stages make (tests/e2e/test_stage_faults.py runs the stages themselves), to spare
a stage's startup per line; the named commands run for real. Damage that kept a file's size and mtime passes
`dvc status`, which trusts both: `dvc repro download` answered "didn't change, skipping" and left the data
corrupt, so the lines name `dvc repro -f download` and `dvc checkout --relink -f`. (Other lines' commands run
where their state is made: tests/unit/test_params.py, test_sweep.py, tests/e2e/seeds/test_verdict_seeds.py.)
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from helpers import (
    VENV_BIN,
    RepoCopy,
    RunsCodeOnLoad,
    copy_with_store,
    free_port,
    mlflow_client,
    stop_process_group,
    tool_env,
    wait_until_answering,
)
from seecam import paths
from seecam.data.store import load_dataset
from seecam.errors import SeecamError
from seecam.inference import load_model
from seecam.params import load_params
from seecam.report import curves_image, file_image, run_report
from seecam.tracking.store import check_store


@pytest.fixture(scope="module")
def repo(pipeline_repo, tmp_path_factory) -> RepoCopy:
    """A copy of the shared trained pipeline (tiny synthetic data, both models trained, evaluated, explained),
    committed."""
    repo = copy_with_store(pipeline_repo, tmp_path_factory.mktemp("fixes") / "repo")
    repo.commit("trained")
    return repo


@pytest.fixture
def at_root(repo, monkeypatch) -> RepoCopy:
    """The repo, as the working directory a stage runs in."""
    monkeypatch.chdir(repo.root)
    return repo


def message(call: Callable[[], object]) -> str:
    """The one-line SeecamError a call raises."""
    with pytest.raises(SeecamError) as info:
        call()
    return str(info.value)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one `error:` line a command printed, exit code 2."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def named(text: str, quote: str = "`([^`]+)`") -> list[str]:
    """The commands a line names (in backticks; on the report page, in <code>)."""
    return re.findall(quote, text)


def run_named(repo: RepoCopy, command: str) -> subprocess.CompletedProcess:
    """A named command as typed in a shell at the repo root."""
    return repo.run("bash", "-c", command)


def keeping_mtime(path: Path, change: Callable[[bytes], bytes]) -> None:
    """Rewrite a file and put its mtime back: damage `dvc status` cannot see."""
    stat = path.stat()
    path.write_bytes(change(path.read_bytes()))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def other_first_digit(text: bytes) -> bytes:
    """meta.json with the first hex digit of its digest of all arrays changed, same size."""
    return re.sub(rb'("all": ")(.)', lambda m: m[1] + (b"1" if m[2] == b"0" else b"0"), text, count=1)


DATA_DAMAGE: dict[str, tuple[str, Callable[[bytes], bytes] | None]] = {
    "a byte flipped, mtime kept": ("test_images.npy", lambda data: data[:-1] + bytes([data[-1] ^ 0xFF])),
    "meta.json's digest edited, mtime kept": ("meta.json", other_first_digit),
    "labels cut, mtime kept": ("train_labels.npy", lambda data: data[: len(data) // 2]),
    "meta.json deleted": ("meta.json", None),
}


UP_TO_DATE = "Data and pipelines are up to date"


@pytest.mark.parametrize("damage", DATA_DAMAGE)
def test_damaged_data_is_restored_by_the_command_its_line_names(at_root, damage):
    repo, data = at_root, at_root.root / "data/cifar10"
    name, change = DATA_DAMAGE[damage]
    if change is None:
        (data / name).unlink()
    else:
        keeping_mtime(data / name, change)
    line = message(load_dataset)
    if "`seecam check-data`" in line:  # "says more": the file and what is wrong with it
        report = repo.root / paths.DATA_CHECKS
        kept = report.read_bytes(), report.stat()
        checked = repo.run(str(VENV_BIN / "seecam"), "check-data", check=False)
        assert checked.returncode == 1 and name in checked.stdout, checked.stdout
        # it rewrote the data report, a download output: even `dvc repro download` would rerun for that. Put it
        # back, so that the fix below meets only the changed bytes
        report.write_bytes(kept[0])
        os.utime(report, ns=(kept[1].st_atime_ns, kept[1].st_mtime_ns))
    [fix] = [command for command in named(line) if command != "seecam check-data"]
    run_named(repo, fix)
    load_dataset()  # every array's sha256 is meta.json's again
    assert UP_TO_DATE in repo.dvc("status", "evaluate").stdout  # the same bytes: nothing reruns


MODEL_DAMAGE: dict[str, Callable[[Path], None]] = {
    "a byte flipped, mtime kept": lambda model: keeping_mtime(model, lambda data: bytes([data[0] ^ 0xFF]) + data[1:]),
    "the other model's file, mtime kept": lambda model: keeping_mtime(
        model, lambda _: model.with_name("se.pt").read_bytes()),
    "a pickle that runs code": lambda model: model.write_bytes(pickle.dumps({"config": RunsCodeOnLoad()})),
    "deleted": lambda model: model.unlink(),
}


@pytest.mark.parametrize("damage", MODEL_DAMAGE)
def test_a_bad_model_file_is_replaced_by_the_first_command_its_line_names(at_root, damage, capfd):
    repo, model = at_root, at_root.root / paths.model_file("cnn")
    good = model.read_bytes()
    MODEL_DAMAGE[damage](model)
    line = message(lambda: load_model(paths.model_file("cnn"), "cnn"))
    run_named(repo, named(line)[0])
    assert model.read_bytes() == good  # the file dvc.lock names, from DVC's cache
    assert UP_TO_DATE in repo.dvc("status", "evaluate").stdout
    assert "code ran" not in capfd.readouterr().out


def test_retraining_as_a_model_line_names_then_evaluating_as_the_verdict_names(at_root):
    """A model file replaced by retraining (the second command of its line; the finished training's record makes
    that a rewrite, not a retrain), then runs whose evaluate records are gone from MLflow: the verdict names the
    command that writes them again (plain `dvc repro evaluate` would skip: DVC sees evaluate up to date)."""
    repo, root = at_root, at_root.root
    MODEL_DAMAGE["a pickle that runs code"](root / paths.model_file("cnn"))
    retrain = named(message(lambda: load_model(paths.model_file("cnn"), "cnn")))[1]
    assert retrain == "dvc repro -f -s train_cnn"
    run_named(repo, retrain)
    load_model(paths.model_file("cnn"), "cnn")
    client = mlflow_client(root)
    runs = {name: json.loads((root / f"reports/train/{name}/run.json").read_text()) for name in ("cnn", "se")}
    for info in runs.values():
        for record in client.search_runs([info["experiment_id"]], f"tags.`mlflow.parentRunId` = '{info['run_id']}' "
                                          "and tags.`seecam.stage` = 'evaluate'"):
            client.delete_run(record.info.run_id)
    sha = runs["cnn"]["config_sha"]
    verdict = (sys.executable, "-m", "seecam.cli", "verdict", "--config-sha", sha)
    line = error_line(repo.run(*verdict, check=False, PYTHONPATH=str(root / "src")))
    assert line.startswith(f"error: no training run of config_sha {sha} has a record of this workspace's evaluate "
                           "configuration"), line
    run_named(repo, named(line)[0])
    again = error_line(repo.run(*verdict, check=False, PYTHONPATH=str(root / "src")))
    assert "1 paired seed(s)" in again and "evaluate record" not in again.split(";")[0], again


def test_the_report_names_the_stages_that_make_what_it_lacks(at_root):
    repo, root = at_root, at_root.root
    (root / "reports/explain/metrics.json").unlink()  # as before explain ran
    line = message(lambda: run_report(load_params()))
    assert line == "reports/explain/metrics.json is missing; run `dvc repro explain` first"
    run_named(repo, named(line)[0])
    assert (root / "reports/explain/metrics.json").is_file()
    (root / "reports/train/cnn/history.csv").unlink()
    figure = root / "reports/evaluate/confusion.png"
    figure.unlink()
    notes = curves_image(["cnn", "se"]) + file_image(figure.relative_to(root), "confusion")
    commands = named(notes, r"missing; run <code>(.*?)</code>")
    assert commands == ["dvc repro train_cnn", "dvc repro"], commands
    for command in commands:
        run_named(repo, command)
    assert "missing" not in curves_image(["cnn", "se"]) + file_image(figure.relative_to(root), "confusion")
    assert "missing" not in (root / "reports/index.html").read_text()  # `dvc repro` built the page


def test_a_stage_without_the_data_names_the_download_that_restores_it(at_root):
    repo = at_root
    shutil.rmtree(paths.DATA_DIR)
    line = message(load_dataset)
    assert line.startswith("data/cifar10: no data set here (meta.json missing)"), line
    run_named(repo, named(line)[0])
    load_dataset()


def test_a_local_tracking_server_that_is_down_is_started_by_the_command_its_line_names(at_root):
    repo, url = at_root, f"http://127.0.0.1:{free_port()}"
    [command] = [command for command in named(message(lambda: check_store(url))) if "make ui" in command]
    # `make ui` in a clone whose .venv is this venv: make must find it installed and never install into it
    venv = repo.root / ".venv"
    venv.mkdir()
    (venv / "bin").symlink_to(VENV_BIN, target_is_directory=True)
    (venv / ".deps").touch()
    server = None
    try:
        assert repo.run("make", "-q", ".venv/.deps", check=False).returncode == 0  # up to date: nothing to install
        server = subprocess.Popen(["bash", "-c", command], cwd=repo.root, env=tool_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until_answering(f"{url}/health", server)
        check_store(url)  # what every stage checks first
        assert MlflowClient(url).get_experiment_by_name("seecam") is not None  # the project's store, served
    finally:
        if server is not None:
            stop_process_group(server)
        shutil.rmtree(venv)


def test_a_damaged_store_stops_dvc_repro_in_one_line_and_moving_it_aside_fixes_it(repo):
    root = repo.root
    store = root / "mlflow.db"
    good = store.read_bytes()
    store.write_bytes(good[: len(good) // 2])
    command = ("repro", "-f", "-s", "evaluate")
    try:
        failed = repo.dvc(*command, check=False)
        assert failed.returncode != 0 and "Traceback" not in failed.stderr, failed.stderr
        [line] = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
        assert line == (f"error: {store}: this MLflow store is damaged (database disk image is malformed); move it "
                        "aside (a new, empty store is made in its place), restore a backup, or set tracking.uri / "
                        "MLFLOW_TRACKING_URI to another store")
        store.rename(root / "mlflow.db.damaged")  # "move it aside"
        rerun = repo.dvc(*command)
        assert "not found in sqlite:///" in rerun.stderr  # the training runs are in the old store: new runs here
    finally:
        store.write_bytes(good)
        (root / "mlflow.db.damaged").unlink(missing_ok=True)
