"""A stage that DVC started stops when DVC does.

`dvc repro` runs a stage's command through `$SHELL -c` (`/bin/sh` when SHELL is unset, as in many CI jobs and
containers). bash and zsh exec a lone command, so the stage's parent is DVC itself, or the `dvc exp exec-run`
process of a queued experiment; Debian's dash does not, and stays between them. DVC passes on no signal: killed
with TERM or KILL it exits at once, and its stage trained on as an orphan, to the end. So a stage started by DVC
(which sets DVC_STAGE for every stage command) has the kernel send it SIGTERM when its parent exits (Linux's
PR_SET_PDEATHSIG) and, when that parent is DVC's shell, watches DVC itself (a pidfd); errors.run then stops it
as on Ctrl-C: one line, the checkpoint kept, the MLflow run marked KILLED, and the rerun resumes.

Only under DVC: a stage started by hand (`nohup python stages/train.py cnn &`) must outlive its shell.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_with_parent() -> None:
    """Under DVC on Linux: SIGTERM to this process when DVC exits, or now if it already has."""
    if "DVC_STAGE" not in os.environ or not sys.platform.startswith("linux"):
        return
    parent_death_signal()
    parent = os.getppid()
    dvc = parent_of(parent) if is_dvc_shell(parent) else parent
    if dvc in (None, 1):  # DVC died during the imports, before the line above: orphaned (adopted by init)
        os.kill(os.getpid(), signal.SIGTERM)
    elif dvc != parent:
        stop_when_gone(dvc, shell=parent)


def parent_death_signal() -> None:
    """Have the kernel send SIGTERM to the calling process when its parent exits (it survives exec, so it also
    serves as a child's preexec_fn: torchrun, under the train stage)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def is_dvc_shell(pid: int) -> bool:
    """Whether process `pid` runs the shell DVC runs stage commands with: $SHELL, else /bin/sh."""
    shell = shutil.which(os.environ.get("SHELL") or "/bin/sh")
    try:
        return shell is not None and os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(shell)
    except OSError:
        return False


def parent_of(pid: int) -> int | None:
    """The parent's pid of process `pid` (field 4 of /proc/<pid>/stat), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError):
        return None


def stop_when_gone(pid: int, shell: int) -> None:
    """SIGTERM to this process once process `pid` exits (now if it already has), from a daemon thread.

    The pidfd is opened before the check that `pid` is still the shell's parent, so a pid reused after DVC
    died is never watched: by then the shell was adopted by another."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = None
    if pidfd is None or parent_of(shell) != pid:
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch() -> None:
        select.select([pidfd], [], [])  # readable once the process exits
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-dvc", daemon=True).start()
