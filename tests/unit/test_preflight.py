"""Checks that run before long work: output locations that cannot be written, tracking servers that are down.

Tests run as root, where chmod does not stop writes: the faults are made of paths in the way instead
(a file where a directory must be, a directory where a file must be), which fail for every user.
"""

import pytest
import yaml

from helpers import REPO, free_port
from seecam.errors import SeecamError
from seecam.paths import EXPLAIN_MODELS_DIR, evaluate_outputs, explain_outputs
from seecam.preflight import check_tracking, check_writable


def test_writable_outputs_pass_and_leave_nothing_behind(tmp_path):
    (tmp_path / "reports/evaluate").mkdir(parents=True)
    check_writable([tmp_path / "reports/evaluate/metrics.json", tmp_path / "reports/evaluate/a.png"])
    assert [p.name for p in (tmp_path / "reports/evaluate").iterdir()] == []
    check_writable([tmp_path / "models/cnn.pt", tmp_path / "reports/train/cnn/run.json"])
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evaluate", "reports"]  # no folder made for a check


def test_a_file_where_the_output_directory_should_be(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/evaluate").write_text("in the way")
    with pytest.raises(SeecamError, match=r"reports/evaluate: cannot write outputs there \(.*\)"):
        check_writable([tmp_path / "reports/evaluate/metrics.json"])
    assert (tmp_path / "reports/evaluate").read_text() == "in the way"


def test_a_file_where_a_parent_directory_should_be(tmp_path):
    (tmp_path / "reports").write_text("in the way")
    with pytest.raises(SeecamError, match=r"reports/evaluate: cannot write outputs there"):
        check_writable([tmp_path / "reports/evaluate/metrics.json"])


def test_a_directory_where_an_output_file_should_be(tmp_path):
    (tmp_path / "out/metrics.json").mkdir(parents=True)
    with pytest.raises(SeecamError, match=r"out/metrics.json: a directory is in the way of this output file"):
        check_writable([tmp_path / "out/metrics.json"])


def test_a_tracking_server_that_is_down_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no reports/train/<name>/run.json here: the URI comes from the environment
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    with pytest.raises(SeecamError, match=rf"MLflow tracking server {url} is unreachable"):
        check_tracking(["cnn", "se"])
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    check_tracking(["cnn", "se"])  # the local SQLite store needs no server


@pytest.mark.parametrize("stage,paths", [("evaluate", evaluate_outputs()),
                                         ("explain", explain_outputs(["cnn", "se"]))])
def test_the_outputs_checked_before_the_work_are_the_ones_dvc_yaml_declares(stage, paths):
    """Each file, or the folder of each model's own files (explain's models/)."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    declared = {next(iter(entry)) if isinstance(entry, dict) else entry for entry in spec["outs"] + spec["metrics"]}
    assert declared == {str(path.parent if path.parent == EXPLAIN_MODELS_DIR else path) for path in paths}
