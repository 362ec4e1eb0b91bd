"""`seecam sweep --seeds 0-2 --run -j 2` on DVC's real queue (whole pipeline per seed), then `seecam verdict`
and the report: the README's commands, end to end, in a clone whose path has a space and a non-ASCII letter."""

import json
import sys

import pytest
from mlflow import MlflowClient

from conftest import UNUSUAL_DIR, copy_repo

pytestmark = pytest.mark.e2e


def test_three_seed_experiments_give_a_verdict_a_linked_run_and_the_report_section(tmp_path):
    (tmp_path / UNUSUAL_DIR).mkdir()
    repo = copy_repo(tmp_path / UNUSUAL_DIR)
    repo.use_tiny_synthetic_data(epochs=1, train_size=400, test_size=120)
    repo.set_params(evaluate__bootstrap_samples=100, evaluate__latency_repeats=2, explain__faithfulness_samples=40,
                    explain__images=[1, 2])
    src = str(repo.root / "src")
    sweep = (sys.executable, "-m", "seecam.cli", "sweep", "--seeds", "0-2")
    refused = repo.run(*sweep, check=False, PYTHONPATH=src)
    assert refused.returncode == 2 and "no git commit, and dvc exp needs one" in refused.stderr
    repo.dvc("cache", "dir", "--local", str(tmp_path / "cache"))  # DVC's queue needs an ASCII cache path (sweep.py)
    repo.run("git", "add", "-A")
    repo.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    swept = repo.run(*sweep, "--run", "-j", "2", PYTHONPATH=src, timeout=1200)
    assert "all 3 experiments succeeded; next: `seecam verdict`" in swept.stdout, swept.stdout
    names = sorted(n for n in repo.dvc("exp", "list", "--name-only").stdout.split() if n.startswith("seed-"))
    assert [name.rsplit("-", 1)[0] for name in names] == ["seed-0", "seed-1", "seed-2"]

    repo.dvc("exp", "apply", names[2])  # the last seed's outputs into the workspace, as a user would
    done = repo.run(sys.executable, "-m", "seecam.cli", "verdict", PYTHONPATH=src)
    result = json.loads((repo.root / "reports/verdict/verdict.json").read_text())
    assert result["seeds"] == 3 and sorted(result["per_seed"]) == ["0", "1", "2"]
    assert result["sentence"] in done.stdout and result["config_sha"] in done.stdout
    assert result["pooled_images"]["images"] == 120  # evaluate's per-image vectors reached the verdict
    assert set(result["faithfulness"]["se"]) == {"deletion_auc", "insertion_auc"}
    assert (repo.root / "reports/verdict/seeds.png").stat().st_size > 0
    assert "Per-class accuracy" in (repo.root / "reports/verdict/verdict.md").read_text()

    client = MlflowClient(f"sqlite:///{repo.root}/mlflow.db")
    verdict_run = client.get_run(result["mlflow_run_id"])
    linked = {k: v for k, v in verdict_run.data.params.items() if k.startswith("run.")}
    assert len(linked) == 6
    for key, run_id in linked.items():
        _, seed, role = key.split(".")
        tags = client.get_run(run_id).data.tags
        assert (tags["seed"], tags["config_sha"]) == (seed, result["config_sha"])
        assert tags["dvc_exp_name"] == names[int(seed)]
        assert tags["model"] == {"baseline": "cnn", "candidate": "se"}[role]
    assert "verdict/seeds.png" in {a.path for a in client.list_artifacts(verdict_run.info.run_id, "verdict")}

    assert "Running stage 'report'" in repo.dvc("repro", "report").stdout  # the new verdict.json reruns it
    page = (repo.root / "reports/index.html").read_text()
    assert page.index("<h2>Verdict across seeds</h2>") < page.index("<h2>Verdict</h2>")
    assert result["sentence"] in page

    repo.set_params(train__lr=0.01)  # another configuration: the verdict is not this page's
    assert "Verdict across seeds" not in _report(repo)


def _report(repo) -> str:
    repo.dvc("repro", "report", "--single-item", "--force")
    return (repo.root / "reports/index.html").read_text()
