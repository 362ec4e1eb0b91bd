"""Three training seeds through the whole pipeline with DVC experiments, then `seecam verdict` and the report."""

import json
import sys

from mlflow import MlflowClient


def test_three_seed_experiments_give_a_verdict_a_linked_run_and_the_report_section(repo_copy):
    repo = repo_copy
    repo.use_tiny_synthetic_data(epochs=1, train_size=400, test_size=120)
    repo.set_params(evaluate__bootstrap_samples=100, evaluate__latency_repeats=2, explain__faithfulness_samples=40,
                    explain__images=[1, 2])
    repo.run("git", "add", "-A")
    repo.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    # sequential experiments in the workspace: on 2 shared cores as fast as `dvc queue start -j 2`
    for seed in (0, 1, 2):
        repo.dvc("exp", "run", "-n", f"seed-{seed}", "-S", f"seed={seed}")

    done = repo.run(sys.executable, "-m", "seecam.cli", "verdict", PYTHONPATH=str(repo.root / "src"))
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
        assert (tags["seed"], tags["config_sha"], tags["dvc_exp_name"]) == (seed, result["config_sha"], f"seed-{seed}")
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
