"""Real DDP: `train.processes: 2` re-launches the stage under torchrun (gloo, CPU) on tiny synthetic data."""

import contextlib
import csv
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import torch

from helpers import REPO, all_runs, gone, tool_env
from seecam.data.store import load_dataset
from seecam.inference import load_model, predict_logits, to_device

CPU = torch.device("cpu")
TIMEOUT_SECONDS = 20  # the process group's timeout in these tests
ENV = {"SEECAM_DDP_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}
TORCHRUN_GRACE_SECONDS = 30  # torchrun's wait between SIGTERM and SIGKILL when it stops the other workers
HUNG_TIMEOUT_SECONDS = 10  # the hung-rank test waits out the whole timeout: a shorter one, as ranks are past start-up


def history(root):
    with (root / "reports/train/cnn/history.csv").open() as f:
        return list(csv.DictReader(f))


def test_two_torchrun_processes_train_through_dvc_repro_into_one_mlflow_run(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=5, train_size=3000, test_size=300)
    repo_copy.set_params(train__processes=2)
    result = repo_copy.dvc("repro", "train_cnn", **ENV)
    assert "starting 2 training processes" in result.stdout + result.stderr
    (run,) = all_runs(root)  # rank 1 logged nothing
    assert run.info.status == "FINISHED" and run.data.params["train.processes"] == "2"
    assert [row["epoch"] for row in history(root)] == ["1", "2", "3", "4", "5"]
    model, _ = load_model(root / "models/cnn.pt", "cnn")
    test = load_dataset(root / "data/cifar10").test
    accuracy = (predict_logits(model, to_device(test.images, CPU)).argmax(1) == torch.from_numpy(test.labels)).float()
    assert accuracy.mean() > 0.5  # chance is 0.1


def test_a_killed_rank_stops_the_job_within_the_timeout_and_a_rerun_resumes_the_same_run(repo_copy):
    root = repo_copy.root
    repo_copy.use_tiny_synthetic_data(epochs=4, train_size=1200, test_size=100)
    repo_copy.set_params(train__processes=2)
    repo_copy.dvc("repro", "download")
    state, seconds, stderr = stop_rank_1(repo_copy, after_epoch=1, how=psutil.Process.kill)
    assert seconds < TIMEOUT_SECONDS, stderr[-3000:]
    assert "Signal 9 (SIGKILL)" in stderr  # torchrun names the rank that died

    rerun = repo_copy.stage("train", "cnn", **ENV)
    assert "resuming from" in rerun.stderr
    (run,) = all_runs(root)
    assert run.info.run_id == state["run_id"] and run.info.status == "FINISHED"
    assert [row["epoch"] for row in history(root)] == ["1", "2", "3", "4"]


def test_a_hung_rank_times_out_the_others_instead_of_hanging_them(repo_copy):
    """What torchrun cannot see (a stopped process, a lost node) the process group's timeout ends."""
    repo_copy.use_tiny_synthetic_data(epochs=4, train_size=1200, test_size=100)
    repo_copy.set_params(train__processes=2)
    repo_copy.dvc("repro", "download")
    _, seconds, stderr = stop_rank_1(repo_copy, after_epoch=0, how=psutil.Process.suspend,
                                     timeout=HUNG_TIMEOUT_SECONDS, resume_once_rank_0_ended=True)
    assert seconds < HUNG_TIMEOUT_SECONDS + 20, stderr[-3000:]
    # rank 0 gave up on a timeout; gloo words it by where it waited ("Timed out waiting 10000ms for recv",
    # "timeout after 10000ms" of a store wait...): a SIGSTOPped rank is alive to torchrun, only a timeout ends it
    assert re.search(r"[Tt]imed? ?out", stderr), stderr[-3000:]


def test_each_rank_draws_its_own_dropout_and_a_rerun_or_resume_repeats_every_rank_exactly(tmp_path):
    """Two real gloo processes (tests/e2e/ddp_streams.py): ranks apply different dropout masks, evaluation runs
    once per epoch on rank 0 alone, and a rerun and a resume from the epoch-1 checkpoint state (every rank's
    streams restored to that rank) give each rank bit-identical results."""
    src = os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                    str(REPO / "tests/e2e/ddp_streams.py"), str(tmp_path)], check=True, capture_output=True,
                   timeout=300, env=tool_env(PYTHONPATH=src, OMP_NUM_THREADS="1", **ENV))
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    (input0, output0), (input1, output1) = (rank["dropout"] for rank in ranks)
    both = (input0 != 0) & (input1 != 0)  # units alive on both ranks: dropout alone zeroes them
    assert both.sum() > 1000
    assert not torch.equal((output0 != 0)[both], (output1 != 0)[both])  # rank-seeded masks differ
    assert [rank["evaluations"] for rank in ranks] == [5, 0]  # 2 + 2 + 1 epochs, validated on rank 0 only
    for rank in ranks:
        runs = rank["runs"]
        for name in ("again", "resumed"):
            assert runs[name]["history"] == runs["first"]["history"], name
            assert all(torch.equal(runs[name]["weights"][k], v) for k, v in runs["first"]["weights"].items()), name
    assert all(torch.equal(ranks[1]["runs"]["first"]["weights"][k], v)
               for k, v in ranks[0]["runs"]["first"]["weights"].items())  # DDP keeps the ranks' weights equal


def ranks_of(pid: int) -> dict[str, psutil.Process]:
    """The training processes under `pid` by RANK; short-lived helpers that exit meanwhile are skipped."""
    ranks = {}
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            if (rank := child.environ().get("RANK")) is not None:
                ranks[rank] = child
    return ranks


def stop_rank_1(repo_copy, after_epoch, how, timeout=TIMEOUT_SECONDS, resume_once_rank_0_ended=False):
    """Train with 2 processes (process group timeout `timeout`), apply `how` to rank 1 at the `after_epoch`
    checkpoint; wait for the job to end.

    `resume_once_rank_0_ended`: a suspended rank 1 is resumed once rank 0 has exited, so it takes torchrun's
    SIGTERM at once instead of torchrun waiting its 30 s grace to SIGKILL it (which its --shutdown-timeout does
    not shorten when a worker failed).

    Return (checkpoint state, seconds from `how` to the job's end, or to rank 0's when resumed, stderr).
    """
    job = repo_copy.spawn(sys.executable, "stages/train.py", "cnn", SEECAM_DDP_TIMEOUT_SECONDS=str(timeout))
    try:
        state = repo_copy.wait_for_checkpoint("cnn", after_epoch, job)
        ranks = ranks_of(job.pid)
        how(ranks["1"])
        began = time.monotonic()
        if resume_once_rank_0_ended:
            assert gone(ranks["0"], timeout=timeout + 60), "rank 0 outlived the process group's timeout"
            rank_0_ended = time.monotonic()
            ranks["1"].resume()
        _, stderr = job.communicate(timeout=TIMEOUT_SECONDS + TORCHRUN_GRACE_SECONDS + 60)
        seconds = (rank_0_ended if resume_once_rank_0_ended else time.monotonic()) - began
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode != 0
    assert "error: a training process failed, so torchrun stopped all 2" in stderr
    assert not [rank for rank in (ranks["0"], ranks["1"]) if rank.is_running()], "a rank outlived the job"
    return state, seconds, stderr
