import argparse
import json
from pathlib import Path

import pytest

from seecam.cli import build_parser, check_data, only_candidate, report_step
from seecam.errors import SeecamError
from seecam.params import Params, parse_params
from seecam.tracking.store import RunInfo


def _parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser and every subcommand's, by command line."""
    found = {parser.prog: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _parsers(sub)
    return found


def test_every_option_and_argument_of_every_command_has_help():
    missing = [f"{prog} {action.option_strings or action.dest}"
               for prog, parser in _parsers(build_parser()).items() for action in parser._actions
               if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()]
    assert missing == []


def test_defaults_are_shown_in_the_help():
    text = _parsers(build_parser())["seecam ui"].format_help()
    assert "5000" in text  # the port a user gets without --port


def test_commands_parse_into_what_they_run():
    parser = build_parser()
    sweep = parser.parse_args(["sweep", "--seeds", "0-4", "-S", "train.lr=0.01", "-S", "seed=1", "--models",
                               " cnn, se8,,", "--run", "-j", "2", "train_cnn"])
    assert (sweep.seeds, sweep.overrides, sweep.models, sweep.run, sweep.jobs, sweep.targets) == (
        "0-4", ["train.lr=0.01", "seed=1"], ["cnn", "se8"], True, 2, ["train_cnn"])
    check = parser.parse_args(["check-data"])
    assert (check.directory, check.report) == (Path("data/cifar10"), Path("reports/data_checks.json"))


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([])
    assert exit_.value.code == 2 and "COMMAND" in capsys.readouterr().err


def test_check_data_writes_its_report_and_fails_a_directory_without_data(tmp_path, capsys):
    report = tmp_path / "checks" / "report.json"
    with pytest.raises(SystemExit) as exit_:
        check_data(tmp_path / "nothing", report)
    assert exit_.value.code == 1
    written = json.loads(report.read_text())
    assert written["ok"] is False and written["error_count"] == 1
    assert capsys.readouterr().out.endswith("data checks: FAILED (1 errors)\n")


def models(*names: str) -> Params:
    return parse_params({"models": {name: {"kind": "se" if name != "cnn" else "cnn"} for name in names}})


def test_the_verdicts_candidate_is_the_one_model_that_is_not_the_baseline():
    assert only_candidate(models("cnn", "se")) == "se"
    with pytest.raises(SeecamError, match=r"^params.yaml has 2 candidates \(se, se8\); name the one to compare with "
                                          r"cnn: seecam verdict --candidate se$"):
        only_candidate(models("cnn", "se", "se8"))


@pytest.fixture
def trained_config(tmp_path, monkeypatch):
    """A workspace whose cnn and se were trained in configuration `abc` (their run.json files say so)."""
    monkeypatch.chdir(tmp_path)
    for name in ("cnn", "se"):
        RunInfo("run", "1", "seecam", "", config_sha="abc").save(tmp_path / f"reports/train/{name}/run.json")


@pytest.mark.parametrize(("config", "experiments", "step"), [
    ("abc", [], "`dvc repro report` puts it on top of reports/index.html"),
    ("def", ["seed-0-1a2b3c"], "the workspace holds another configuration: `dvc exp apply seed-0-1a2b3c`"),
    ("def", [], "`dvc repro report` puts it on top of reports/index.html once the workspace trains config_sha def"),
])
def test_the_next_step_after_a_verdict_depends_on_what_the_workspace_trained(trained_config, config, experiments,
                                                                             step):
    assert report_step(config, experiments, ["cnn", "se"]).startswith(step)
