"""`seecam sweep --seeds 0-2 -S ... --run -j 2` on DVC's real queue (whole pipeline per seed: seeds/conftest.py),
then `seecam verdict` and the report: the README's commands, end to end, in a clone that never ran the pipeline
itself, whose path has a space and a non-ASCII letter. Then, in that workspace, changes and their reverts:
MLflow's records and the verdict follow the workspace."""

import json
import re
import shlex
import sys

import pytest
from mlflow.entities import Run

from helpers import RepoCopy, mlflow_client
from seecam.code_version import PIPELINE, training_code_digest
from seecam.identity import sweep_digest
from seecam.params import load_params
from seecam.sweep import check_overrides, parse_overrides
from seecam.tracking.stages import StageConfig
from seecam.verdict.pooling import trainings

NAMES = ("cnn", "se")


def test_the_sweep_returns_once_its_queue_workers_exited(sweep):
    """`seecam sweep --run` is done when DVC's queue workers are: the first one cleans DVC's celery broker as it
    exits, and a copy of the repo made meanwhile met its files vanishing (seen in CI)."""
    assert sweep.left_running == []


def test_three_seed_experiments_give_a_verdict_a_linked_run_and_the_report_section(swept):
    repo, names, sha = swept.repo, swept.names, swept.sha
    src = str(repo.root / "src")
    # it talked while it ran: where each experiment's log is, and a line as each one started and finished
    assert f"running 3 experiments on 2 queue workers; an experiment's own log: dvc queue logs <name>, e.g. " \
           f"dvc queue logs {names[0]}" in swept.stdout, swept.stdout
    for seed, name in enumerate(names):
        assert f"seed {seed} started ({name})" in swept.stdout, swept.stdout
        assert re.search(rf"seed {seed} finished in \d+m\d\ds: test_acc cnn 0\.\d{{4}}, se 0\.\d{{4}} \({name}\)",
                         swept.stdout), swept.stdout
    assert swept.stdout.index(f"dvc exp apply {names[0]}") < swept.stdout.index(
        f"seecam verdict --config-sha {sha}"), swept.stdout

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
    # two queue workers at once on one SQLite store: every training recorded once, none lost or doubled
    runs = trainings(client.search_runs([client.get_experiment_by_name("seecam").experiment_id]))
    recorded = sorted((r.data.tags["model"], r.data.params["seed"], r.info.status) for r in runs)
    assert recorded == sorted((model, str(seed), "FINISHED") for model in NAMES for seed in range(3))
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

    # one seed short (two runs' tags made malformed), the refusal names a sweep of this configuration: the
    # workspace's params (2 epochs) with the sweep's -S, whose experiments are these (the same digest)
    shorted = [client.get_run(linked[f"run.{seed}.baseline"]) for seed in (1, 2)]
    for run in shorted:
        client.set_tag(run.info.run_id, "seed", "x")
    refused = repo.run(sys.executable, "-m", "seecam.cli", "verdict", "--config-sha", sha, check=False,
                       PYTHONPATH=src).stderr
    for run in shorted:
        client.set_tag(run.info.run_id, "seed", run.data.tags["seed"])
    named = re.search(r"`seecam sweep --seeds 0-2 (.+) --run -j 2`", refused)
    assert named and "1 paired seed(s)" in refused, refused
    overrides = [value for flag, value in zip(*[iter(shlex.split(named[1]))] * 2, strict=True) if flag == "-S"]
    params = check_overrides(repo.root / "params.yaml", parse_overrides(overrides))
    assert names[0].endswith(sweep_digest(params, training_code_digest(params.models, repo.root / PIPELINE))), overrides

    repo.dvc("exp", "apply", names[2])  # the sweep's configuration into the workspace, as the next steps say
    again = repo.run(sys.executable, "-m", "seecam.cli", "verdict", PYTHONPATH=src).stdout  # apply restored reports/
    rerun = json.loads((repo.root / "reports/verdict/verdict.json").read_text())
    assert rerun["mlflow_run_id"] == verdict_run.info.run_id  # the same runs pooled again: the same verdict run
    assert "`dvc repro report` puts it on top" in again  # the workspace now holds this configuration
    assert "Running stage 'report'" in repo.dvc("repro", "report").stdout  # the new verdict.json reruns it
    page = (repo.root / "reports/index.html").read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page)[:2] == ["Verdict across seeds", "One training run (seed 2)"]
    assert result["plain"] in page and "on synthetic data</h1>" in page

    # another configuration, trained (the page's configuration is its models', from run.json, not params.yaml):
    # the verdict is not this page's, but it is named
    repo.set_params(train__lr=0.01)
    repo.dvc("repro", "--single-item", "train_cnn", "train_se")
    repo.dvc("repro", "--single-item", "--force", "report")
    page = (repo.root / "reports/index.html").read_text()
    assert "Verdict across seeds" not in page and "One training run (seed 2): not a verdict" in page
    assert f"A verdict across 3 seeds exists for another configuration (config_sha <code>{sha}</code>" in page


def workspace_records(repo: RepoCopy) -> dict[str, dict[str, Run]]:
    """Stage -> model -> the record of the workspace's configuration under the model's training run (run.json)."""
    params = load_params(repo.root / "params.yaml")
    client = mlflow_client(repo.root)
    out = {}
    for stage in ("evaluate", "explain"):
        config = StageConfig.of(stage, getattr(params, stage), repo.root / "dvc.yaml")
        out[stage] = {}
        for name in NAMES:
            training = json.loads((repo.root / f"reports/train/{name}/run.json").read_text())["run_id"]
            experiment = client.get_run(training).info.experiment_id
            found = [run for run in client.search_runs([experiment], f"tags.stage_config_sha = '{config.sha}'")
                     if run.data.tags.get("mlflow.parentRunId") == training]
            assert len(found) == 1, (stage, name, found)  # one record per identity, never a second
            out[stage][name] = found[0]
    return out


def test_changes_and_reverts_leave_the_matching_record_equal_to_the_workspace_and_the_verdict_pools_only_it(
        swept, capsys):
    """The issue's sequence in the workspace of seed 2: change explain, repro, revert, repro, then the same with
    evaluate. At every step the record of the workspace's configuration holds the workspace's metrics, and the
    verdict pools only such records (before, the training run kept the last configuration's numbers, and the
    verdict pooled them)."""
    repo, root = swept.repo, swept.repo.root
    repo.dvc("exp", "apply", swept.names[2])
    client = mlflow_client(root)
    log = []

    def step(what: str, **params) -> dict:
        if params:
            repo.set_params(**params)
        done = repo.dvc("repro")
        assert "MLflow has no record" not in done.stdout + done.stderr
        explained = json.loads((root / "reports/explain/metrics.json").read_text())
        evaluated = json.loads((root / "reports/evaluate/metrics.json").read_text())
        records = workspace_records(repo)
        for name in NAMES:
            explain, evaluate = records["explain"][name], records["evaluate"][name]
            assert explain.data.metrics["explain/deletion_auc"] == explained[name]["deletion_auc"]
            assert explain.data.params["explain.layer"] == explained["layer"]
            for key in ("test_acc", "test_acc_ci_low", "test_acc_ci_high", "test_loss"):
                assert evaluate.data.metrics[key] == evaluated[name][key], (name, key)
        result = repo.run(sys.executable, "-m", "seecam.cli", "verdict", check=False, PYTHONPATH=str(root / "src"))
        pooled = json.loads((root / "reports/verdict/verdict.json").read_text()) if result.returncode == 0 else {}
        cached = [stage for stage in ("evaluate", "explain") if f"Stage '{stage}' is cached" in done.stdout]
        log.append(f"{what}: cnn deletion AUC {explained['cnn']['deletion_auc']:.4f} (record "
                   f"{records['explain']['cnn'].info.run_id}), cnn test_acc_ci_low "
                   f"{evaluated['cnn']['test_acc_ci_low']:.4f} (record {records['evaluate']['cnn'].info.run_id})"
                   f"{'; restored from the run cache: ' + ', '.join(cached) if cached else ''}; verdict: "
                   + (f"cnn deletion AUC {pooled['faithfulness']['cnn'].get('deletion_auc', {}).get('mean', '-')}"
                      if pooled else result.stderr.strip()))
        return {"explained": explained, "evaluated": evaluated, "verdict": pooled, "refusal": result.stderr,
                "records": records}

    base = step("seed 2 as swept")
    runs = [row["runs"]["cnn"] for row in base["verdict"]["per_seed"].values()]
    explain_sha = base["verdict"]["explain_config_sha"]
    aucs = [run.data.metrics["explain/deletion_auc"] for run in client.search_runs(
        [client.get_run(runs[0]).info.experiment_id], f"tags.stage_config_sha = '{explain_sha}'")
        if run.data.tags["mlflow.parentRunId"] in runs]
    assert len(aucs) == 3 and base["verdict"]["faithfulness"]["cnn"]["deletion_auc"]["mean"] == pytest.approx(
        sum(aucs) / 3)
    changed = step("explain.layer block2", explain__layer="block2")
    assert changed["explained"]["cnn"]["deletion_auc"] != base["explained"]["cnn"]["deletion_auc"]
    assert changed["verdict"]["explain_layer"] == "block2" and changed["verdict"]["faithfulness"]["cnn"] == {}
    assert changed["verdict"]["skipped"]["no explain record of this configuration (faithfulness left out)"] == 4
    reverted = step("explain.layer back to block3", explain__layer="block3")
    assert reverted["explained"] == base["explained"]
    assert reverted["verdict"]["faithfulness"] == base["verdict"]["faithfulness"]
    evaluated = step("evaluate.bootstrap_samples 50", evaluate__bootstrap_samples=50)
    assert evaluated["evaluated"]["cnn"]["test_acc_ci_low"] != base["evaluated"]["cnn"]["test_acc_ci_low"]
    assert "1 paired seed(s)" in evaluated["refusal"] and "4 no evaluate record of this configuration" in \
        evaluated["refusal"] and len(evaluated["refusal"].strip().splitlines()) == 1
    back = step("evaluate.bootstrap_samples back to 100", evaluate__bootstrap_samples=100)
    assert back["evaluated"] == base["evaluated"] and back["verdict"]["per_seed"] == base["verdict"]["per_seed"]

    # a record deleted (or a new store): the report says so in one line, and names what writes it
    client.delete_run(back["records"]["explain"]["cnn"].info.run_id)
    page = repo.dvc("repro", "--single-item", "--force", "report")
    (line,) = [line for line in (page.stdout + page.stderr).splitlines() if "MLflow has no record" in line]
    assert line.startswith("warning: MLflow has no record of this workspace's configuration for cnn's explain record")
    assert line.endswith("`dvc repro -f -s explain` writes them")
    with capsys.disabled():
        print("\n" + "\n".join(log))

