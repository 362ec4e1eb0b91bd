"""A stage that DVC started stops, as on Ctrl-C, when DVC exits however it was stopped; one started by hand
outlives the shell that started it."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from helpers import REPO, gone

STAGE = """
import time
from seecam.errors import run

def main():
    print("training", flush=True)
    time.sleep(60)

run(main)
"""
# dvc repro's place: starts the stage (which inherits its pipes), says the stage's pid, and waits
DVC = f"""
import subprocess, sys, time
stage = subprocess.Popen([sys.executable, "-c", {STAGE!r}])
print(stage.pid, flush=True)
time.sleep(60)
"""


def start(**env: str) -> tuple[subprocess.Popen, psutil.Process]:
    """The stand-in for dvc repro and its stage, once the stage runs its main."""
    parent = subprocess.Popen([sys.executable, "-c", DVC], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={"PYTHONPATH": str(REPO / "src"), **env}, start_new_session=True)
    stage = psutil.Process(int(parent.stdout.readline()))
    assert parent.stdout.readline() == "training\n"
    return parent, stage


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stage_started_by_dvc_stops_when_dvc_exits(sig):
    """`kill <pid of dvc repro>`: dvc exited at once and its stage trained on as an orphan, to the end."""
    parent, stage = start(DVC_STAGE="train_cnn")
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
