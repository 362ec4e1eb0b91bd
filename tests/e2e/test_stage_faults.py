"""Faults injected for real into evaluate and explain: damaged model files, outputs that cannot be written,
a tracking server that is down, a damaged tracking store. Each is one `error:` line (exit 2) before any long
work, and the previous outputs are left exactly as they were.

Tests run as root, where chmod does not stop writes: unwritable outputs are made of paths in the way
(a file where the output directory should be, a directory where an output file should be).
"""

import os
import shutil
import sys

import pytest

from helpers import REPO, copy_repo, free_port, imported_modules
from seecam.inference import save_model
from seecam.models import build_model, model_config
from seecam.params import CnnParams, SeParams

STAGES = ("evaluate", "explain")


@pytest.fixture(scope="module")
def trained_repo(tmp_path_factory):
    """Tiny synthetic data and two (untrained) model files: what evaluate and explain read, made in seconds."""
    repo = copy_repo(tmp_path_factory.mktemp("faults"))
    repo.use_tiny_synthetic_data(train_size=300, test_size=200)
    repo.stage("download")
    for name, params in (("cnn", CnnParams()), ("se", SeParams())):
        save_model(repo.root / f"models/{name}.pt", build_model(name, params), model_config(name, params), [])
    return repo


@pytest.fixture
def repo(trained_repo):
    """The shared repo, with models/ and reports/<stage> put back as they were after each test."""
    root = trained_repo.root
    models = {p: p.read_bytes() for p in (root / "models").iterdir()}
    yield trained_repo
    for path, content in models.items():
        path.write_bytes(content)
    for stage in STAGES:
        _remove(root / "reports" / stage)


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            _remove(child)
        path.rmdir()
    elif path.exists():
        path.unlink()


def snapshot(root):
    """Every file under reports/ with its bytes and mtime: what 'left untouched' means."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted((root / "reports").rglob("*")) if p.is_file()}


def one_error_line(result):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty"])
def test_a_damaged_model_file_is_one_line_naming_the_commands_that_replace_it(repo, stage, damage):
    model = repo.root / "models/cnn.pt"
    data = model.read_bytes()
    model.write_bytes({"truncated": data[: len(data) // 3], "random bytes": os.urandom(4096), "empty": b""}[damage])
    before = snapshot(repo.root)
    line = one_error_line(repo.stage(stage, check=False))
    assert line.startswith("error: models/cnn.pt: ") and line.endswith(
        "; `dvc checkout --relink -f models/cnn.pt` restores it from DVC's cache (`dvc repro -f -s train_cnn` retrains "
        "it)")
    assert snapshot(repo.root) == before


@pytest.mark.parametrize("stage", STAGES)
def test_a_file_in_place_of_the_output_directory_stops_before_any_work(repo, stage):
    (repo.root / "reports" / stage).write_text("in the way\n")
    before = snapshot(repo.root)
    line = one_error_line(repo.stage(stage, check=False))
    assert line.startswith(f"error: reports/{stage}: cannot write outputs there (")
    assert snapshot(repo.root) == before


@pytest.mark.parametrize("stage", STAGES)
def test_a_directory_in_place_of_an_output_file_stops_before_any_work(repo, stage):
    outputs = repo.root / "reports" / stage
    (outputs / "metrics.json").mkdir(parents=True)
    (outputs / "comparison.md").write_text("old\n")  # a previous output that must survive
    before = snapshot(repo.root)
    line = one_error_line(repo.stage(stage, check=False))
    assert line == f"error: reports/{stage}/metrics.json: a directory is in the way of this output file; " \
                   "move it away and rerun"
    assert snapshot(repo.root) == before and sorted(p.name for p in outputs.iterdir()) == ["comparison.md",
                                                                                          "metrics.json"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_tracking_server_that_is_down_is_found_before_the_work_and_rewrites_nothing(repo, stage):
    outputs = repo.root / "reports" / stage
    outputs.mkdir(parents=True)
    (outputs / "metrics.json").write_text('{"old": 1}\n')
    before = snapshot(repo.root)
    url = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(repo.stage(stage, check=False, MLFLOW_TRACKING_URI=url))
    assert line.startswith(f"error: MLflow tracking server {url} is unreachable")
    assert snapshot(repo.root) == before


def test_training_refuses_an_output_in_the_way_before_the_first_epoch(repo):
    (repo.root / "reports/train/cnn/history.csv").mkdir(parents=True)
    line = one_error_line(repo.stage("train", "cnn", check=False))
    assert line == "error: reports/train/cnn/history.csv: a directory is in the way of this output file; " \
                   "move it away and rerun"
    assert not list((repo.root / "checkpoints").glob("cnn-*.ckpt"))  # stopped before any epoch
    _remove(repo.root / "reports/train")


@pytest.mark.parametrize("stage", ["train", *STAGES])
def test_a_fault_found_without_the_models_is_one_line_before_torch_and_mlflow_load(repo, stage):
    """An output in the way needs no model to find: the stage says so before importing torch and MLflow, which take
    four seconds. (A store that is down or damaged, and changed data, are checked at the same point of each stage
    script; their own tests above and below give their lines.)"""
    output = repo.root / ("reports/train/cnn/history.csv" if stage == "train" else f"reports/{stage}/metrics.json")
    output.mkdir(parents=True)
    try:
        args = ("cnn",) if stage == "train" else ()
        done = repo.run(sys.executable, "-X", "importtime", f"stages/{stage}.py", *args, check=False)
    finally:
        _remove(repo.root / "reports/train")
    assert done.returncode == 2 and "error: " in done.stderr and "a directory is in the way" in done.stderr
    imported = imported_modules(done.stderr)
    assert "seecam.preflight" in imported  # -X importtime listed what was imported
    assert sorted(name for name in imported if name.split(".")[0] in ("torch", "mlflow")) == []


@pytest.mark.parametrize("stage", ["train", *STAGES])
def test_an_environment_tracking_uri_mlflow_cannot_use_is_one_line(repo, stage):
    args = ("cnn",) if stage == "train" else ()
    line = one_error_line(repo.stage(stage, *args, check=False, MLFLOW_TRACKING_URI="notascheme"))
    assert line.startswith("error: MLFLOW_TRACKING_URI must be '' (the project's store) or a URI MLflow can track")


@pytest.mark.parametrize("stage", ["train", *STAGES])
def test_data_changed_after_the_download_stops_the_stage_in_one_line(repo, stage):
    """One byte flipped in place (same size): DVC's mtime cache may call it unchanged; the stage does not."""
    images = repo.root / "data/cifar10/test_images.npy"
    data = images.read_bytes()
    images.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    try:
        line = one_error_line(repo.stage(stage, *(("cnn",) if stage == "train" else ()), check=False))
    finally:
        images.write_bytes(data)
    assert line == ("error: data/cifar10/test_images.npy: its bytes differ from the sha256 in meta.json (changed "
                    "after the download); `seecam check-data` says more, `dvc repro -f download` restores it")


STORE_FIX = ("move it aside (a new, empty store is made in its place), restore a backup, or set tracking.uri / "
             "MLFLOW_TRACKING_URI to another store")


@pytest.mark.parametrize("command", [("stages/train.py", "cnn"), ("stages/evaluate.py",), ("stages/explain.py",),
                                     ("stages/report.py",), ("-m", "seecam.cli", "verdict")])
def test_a_damaged_tracking_store_is_one_line_before_any_output_is_touched(repo, command):
    """Was an 88-line traceback ending `file is not a database`, after evaluate had rewritten its outputs."""
    root = repo.root
    for stage in STAGES:  # what the report reads before anything else: real files of both models
        (root / "reports" / stage).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / f"tests/unit/metrics_files/{stage}.json", root / "reports" / stage / "metrics.json")
    store = root / "mlflow.db"
    store.write_bytes(os.urandom(64 * 1024))

    def state():
        return snapshot(root), {p.name: p.read_bytes() for p in (root / "models").iterdir()}

    before = state()
    try:
        line = one_error_line(repo.run(sys.executable, *command, check=False, PYTHONPATH=str(root / "src")))
    finally:
        store.unlink()
    assert line == f"error: {store}: this MLflow store is damaged (file is not a database); {STORE_FIX}"
    assert state() == before and not list((root / "checkpoints").glob("*.ckpt"))
