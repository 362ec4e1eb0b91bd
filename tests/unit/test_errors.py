"""The exit path of every stage and command: one line for a user error or a stop, and a stop that never cuts a
database write in half."""

import signal
import subprocess
import sys

import pytest

from helpers import REPO
from seecam.errors import SeecamError, Stopped, interruption, run

# A stand-in for an MLflow write: code of an `sqlalchemy.` module that takes 0.3 s, and is sent SIGTERM inside.
STOPPED_MID_WRITE = """
import os, signal, sys, time
from seecam.errors import run

driver = {"os": os, "signal": signal, "time": time, "__name__": "sqlalchemy.orm.session"}
exec("def commit(log):\\n    os.kill(os.getpid(), signal.SIGTERM)\\n    time.sleep(0.3)\\n    log.append('committed')",
     driver)
log = []

def main():
    try:
        driver["commit"](log)
        time.sleep(30)
    finally:
        print(" ".join(log) or "stopped mid-write", flush=True)

run(main)
"""


def test_a_stop_waits_for_the_database_call_it_interrupted():
    """Raised inside an MLflow write to SQLite, a stop left the store locked and the run RUNNING (1 stop in 12)."""
    result = subprocess.run([sys.executable, "-c", STOPPED_MID_WRITE], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(REPO / "src")})
    assert result.stdout == "committed\n"
    assert result.stderr == "stopped by SIGTERM; outputs were left as they were\n"
    assert result.returncode == 128 + signal.SIGTERM


# A stand-in for a C extension's module init (matplotlib's Agg backend, imported by the first figure of a stage)
# that a SIGTERM interrupts: CPython reports it as an ImportError caused by the stop.
STOPPED_IN_AN_IMPORT = """
import os, signal, time
from seecam.errors import run

def main():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    except BaseException as stop:
        raise ImportError("initialization failed") from stop

run(main)
"""


def test_a_stop_inside_an_import_is_the_stops_one_line():
    """test_resume's SIGTERM after the last epoch landed while train imported matplotlib's backend: a 40-line
    traceback ending `ImportError: initialization failed`, exit 1, instead of the stop's line and 143."""
    result = subprocess.run([sys.executable, "-c", STOPPED_IN_AN_IMPORT], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(REPO / "src")})
    assert result.stderr == "stopped by SIGTERM; outputs were left as they were\n"
    assert result.returncode == 128 + signal.SIGTERM


@pytest.fixture
def in_process(monkeypatch):
    """errors.run called in this process: not under DVC, and pytest's own signal handlers back afterwards."""
    monkeypatch.delenv("DVC_STAGE", raising=False)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in handlers.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("code", [2, 5])
def test_a_user_error_is_one_line_and_its_exit_code(in_process, capsys, code):
    def main():
        raise SeecamError("params.yaml: train.lr must be > 0", exit_code=code)

    with pytest.raises(SystemExit) as exit_:
        run(main)
    assert exit_.value.code == code
    assert capsys.readouterr().err == "error: params.yaml: train.lr must be > 0\n"


def test_a_bug_keeps_its_traceback(in_process):
    def main():
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError, match="a bug"):
        run(main)


def test_ctrl_c_is_one_line_and_exit_130(in_process, capsys):
    def main():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        run(main)
    assert exit_.value.code == 128 + signal.SIGINT
    assert capsys.readouterr().err == "interrupted; outputs were left as they were\n"


def test_a_stop_is_found_behind_the_errors_it_caused_and_only_there():
    stop = Stopped()
    implicit = ImportError("initialization failed")
    implicit.__context__ = stop  # raised while handling the stop, as an interrupted import is
    explicit = RuntimeError("wrapped")
    explicit.__cause__ = stop  # raise ... from stop
    assert interruption(implicit) is stop and interruption(explicit) is stop
    assert interruption(RuntimeError("a bug")) is None
