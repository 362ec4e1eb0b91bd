"""A stage that DVC started stops when DVC does.

`dvc repro` runs a stage's command through `$SHELL -c`, which execs it (bash, zsh and dash do so for one
command), so the stage's parent is DVC itself, or the `dvc exp exec-run` process of a queued experiment.
DVC passes on no signal: killed with TERM or KILL it exits at once, and its stage trained on as an orphan,
to the end. So a stage started by DVC (which sets DVC_STAGE for every stage command) asks the kernel for
SIGTERM when its parent exits (Linux's PR_SET_PDEATHSIG), and errors.run stops it as on Ctrl-C: one line,
the checkpoint kept, the MLflow run marked KILLED, and the rerun resumes.

Only under DVC: a stage started by hand (`nohup python stages/train.py cnn &`) must outlive its shell.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_with_parent() -> None:
    """Under DVC on Linux: SIGTERM to this process when its parent exits, or now if it already has."""
    if "DVC_STAGE" not in os.environ or not sys.platform.startswith("linux"):
        return
    parent_death_signal()
    if os.getppid() == 1:  # DVC died during the imports, before the line above: orphaned (adopted by init)
        os.kill(os.getpid(), signal.SIGTERM)


def parent_death_signal() -> None:
    """Have the kernel send SIGTERM to the calling process when its parent exits (it survives exec, so it also
    serves as a child's preexec_fn: torchrun, under the train stage)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
