"""A stage that DVC started stops, as on Ctrl-C, when DVC exits however it was stopped; one started by hand
outlives the shell that started it."""

import os
import shlex
import signal
import subprocess
import sys
import time

import psutil
import pytest

from helpers import REPO, gone

STAGE = """
import os, time
from seecam.errors import run

def main():
    print(os.getpid(), flush=True)
    time.sleep(60)

run(main)
"""
# dvc repro's place: starts the stage's command (which inherits its pipes) as DVC does, through `$SHELL -c`
DVC = """
import subprocess, sys, time
subprocess.Popen(sys.argv[1:])
time.sleep(60)
"""


def start(shell: str | None = None, **env: str) -> tuple[subprocess.Popen, psutil.Process]:
    """The stand-in for dvc repro and its stage, once the stage runs its main; `shell` runs the stage's command."""
    command = [sys.executable, "-c", STAGE]
    if shell:
        command = [shell, "-c", shlex.join(command)]
    parent = subprocess.Popen([sys.executable, "-c", DVC, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={"PYTHONPATH": str(REPO / "src"), "SHELL": shell or "", **env},
                              start_new_session=True)
    return parent, psutil.Process(int(parent.stdout.readline()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("shell", [None, "/bin/bash", "/bin/sh"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stage_started_by_dvc_stops_when_dvc_exits(sig, shell):
    """`kill <pid of dvc repro>`: dvc exited at once and its stage trained on as an orphan, to the end. DVC runs
    the command through $SHELL (else /bin/sh): bash execs it, Debian's dash stays between them (CI's case)."""
    parent, stage = start(shell, DVC_STAGE="train_cnn")
    os.kill(parent.pid, sig)
    began = time.monotonic()
    _, stderr = parent.communicate(timeout=30)  # EOF once the stage, which holds the same pipes, closes them
    assert gone(stage, timeout=5) and time.monotonic() - began < 5
    assert stderr == "stopped by SIGTERM; outputs were left as they were\n"


def test_a_stage_started_by_hand_outlives_its_parent():
    """`nohup python stages/train.py cnn &` in a shell that then exits: the training goes on."""
    parent, stage = start()
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    try:
        assert not gone(stage, timeout=1)
    finally:
        stage.kill()
        parent.communicate(timeout=30)
