"""`seecam sweep --seeds 0-2 -S ... --run -j 2` on DVC's real queue (whole pipeline per seed), then `seecam verdict`
and the report: the README's commands, end to end, in a clone that never ran the pipeline itself, whose path
has a space and a non-ASCII letter."""

import json
import re
import sys

from helpers import UNUSUAL_DIR, copy_repo, mlflow_client


def test_three_seed_experiments_give_a_verdict_a_linked_run_and_the_report_section(tmp_path):
    (tmp_path / UNUSUAL_DIR).mkdir()
    repo = copy_repo(tmp_path / UNUSUAL_DIR)
    repo.use_tiny_synthetic_data(epochs=2, train_size=400, test_size=120)
    repo.set_params(evaluate__bootstrap_samples=100, evaluate__latency_repeats=2, explain__faithfulness_samples=40,
                    explain__images=[1, 2])
    src = str(repo.root / "src")
    sweep = (sys.executable, "-m", "seecam.cli", "sweep", "--seeds", "0-2", "-S", "train.epochs=1")
    refused = repo.run(*sweep, check=False, PYTHONPATH=src)
    assert refused.returncode == 2 and "no git commit, and dvc exp needs one" in refused.stderr
    repo.dvc("cache", "dir", "--local", str(tmp_path / "cache"))  # DVC's queue needs an ASCII cache path (sweep.py)
    repo.run("git", "add", "-A")
    repo.run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    # as `.venv/bin/seecam sweep` from a shell without the venv active: the queue workers still find dvc and python
    swept = repo.run(*sweep, "--run", "-j", "2", PYTHONPATH=src, PATH="/usr/bin:/bin", timeout=1200).stdout
    names = sorted(n for n in repo.dvc("exp", "list", "--name-only").stdout.split() if n.startswith("seed-"))
    assert [name.rsplit("-", 1)[0] for name in names] == ["seed-0", "seed-1", "seed-2"]
    sha = re.search(r"all 3 experiments succeeded; config_sha ([0-9a-f]{16})\n", swept)[1]
    # it talked while it ran: where each experiment's log is, and a line as each one started and finished
    assert f"running 3 experiments on 2 queue workers; an experiment's own log: dvc queue logs <name>, e.g. " \
           f"dvc queue logs {names[0]}" in swept, swept
    for seed, name in enumerate(names):
        assert f"seed {seed} started ({name})" in swept, swept
        assert re.search(rf"seed {seed} finished in \d+m\d\ds: test_acc cnn 0\.\d{{4}}, se 0\.\d{{4}} \({name}\)",
                         swept), swept
    assert swept.index(f"dvc exp apply {names[0]}") < swept.index(f"seecam verdict --config-sha {sha}"), swept

    assert not (repo.root / "data/cifar10").exists()  # this workspace never ran download: MLflow is enough
    done = repo.run(sys.executable, "-m", "seecam.cli", "verdict", PYTHONPATH=src).stdout  # the sweep's -S config
    result = json.loads((repo.root / "reports/verdict/verdict.json").read_text())
    assert result["config_sha"] == sha and result["seeds"] == 3 and sorted(result["per_seed"]) == ["0", "1", "2"]
    assert done.startswith(result["plain"]) and result["sentence"] in done
    assert f"`dvc exp apply {names[0]}`" in done and result["experiments"] == names
    assert result["pooled_images"]["images"] == 120  # evaluate's per-image vectors reached the verdict
    assert set(result["faithfulness"]["se"]) == {"deletion_auc", "insertion_auc"}
    assert (repo.root / "reports/verdict/seeds.png").stat().st_size > 0
    assert "Per-class accuracy" in (repo.root / "reports/verdict/verdict.md").read_text()

    client = mlflow_client(repo.root)
    verdict_run = client.get_run(result["mlflow_run_id"])
    linked = {k: v for k, v in verdict_run.data.params.items() if k.startswith("run.")}
    assert len(linked) == 6
    for key, run_id in linked.items():
        _, seed, role = key.split(".")
        run = client.get_run(run_id)
        assert (run.data.tags["seed"], run.data.tags["config_sha"]) == (seed, result["config_sha"])
        assert run.data.tags["dvc_exp_name"] == names[int(seed)]
        assert run.data.tags["model"] == {"baseline": "cnn", "candidate": "se"}[role]
        assert run.info.run_name == f"{run.data.tags['model']} · seed {seed}"
    assert "verdict/seeds.png" in {a.path for a in client.list_artifacts(verdict_run.info.run_id, "verdict")}

    repo.dvc("exp", "apply", names[2])  # the sweep's configuration into the workspace, as the next steps say
    again = repo.run(sys.executable, "-m", "seecam.cli", "verdict", PYTHONPATH=src).stdout  # apply restored reports/
    rerun = json.loads((repo.root / "reports/verdict/verdict.json").read_text())
    assert rerun["mlflow_run_id"] == verdict_run.info.run_id  # the same runs pooled again: the same verdict run
    assert "`dvc repro report` puts it on top" in again  # the workspace now holds this configuration
    assert "Running stage 'report'" in repo.dvc("repro", "report").stdout  # the new verdict.json reruns it
    page = (repo.root / "reports/index.html").read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page)[:2] == ["Verdict across seeds", "One training run (seed 2)"]
    assert result["plain"] in page and "on synthetic data</h1>" in page

    repo.set_params(train__lr=0.01)  # another configuration: the verdict is not this page's, but it is named
    page = _report(repo)
    assert "Verdict across seeds" not in page and "One training run (seed 2): not a verdict" in page
    assert f"A verdict across 3 seeds exists for another configuration (config_sha <code>{sha}</code>" in page


def _report(repo) -> str:
    repo.dvc("repro", "report", "--single-item", "--force")
    return (repo.root / "reports/index.html").read_text()
