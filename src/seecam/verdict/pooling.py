"""Which MLflow runs the verdict pools: the finished training runs of one configuration (`choose_config` when
none is named), one network per model, with the figures of their records of the workspace's evaluate and explain
configurations (`select_runs`), paired by seed (`pair_runs`). Everything else is skipped and counted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import ViewType

from seecam import paths
from seecam.credentials import masked
from seecam.errors import SeecamError
from seecam.params import MODEL_NAME, Params
from seecam.sweep import is_sweep_experiment
from seecam.tracking.stages import CORRECT_ARTIFACT, STAGE, StageConfig, stage_records
from seecam.tracking.store import RunInfo
from seecam.tracking.training import config_params
from seecam.verdict.record import ModelRun, Pair

RUN_SWEEP = "queue seeds with `seecam sweep --seeds 0-2 --run -j 2`"


def pair_runs(runs: list[ModelRun], baseline: str, candidate: str) -> tuple[list[Pair], list[int]]:
    """Pairs sorted by seed, and the seeds that have only one of the two models."""
    by_seed: dict[int, dict[str, ModelRun]] = {}
    for run in runs:
        by_seed.setdefault(run.seed, {})[run.model] = run
    pairs = [Pair(seed, models[baseline], models[candidate]) for seed, models in sorted(by_seed.items())
             if baseline in models and candidate in models]
    return pairs, sorted(seed for seed, models in by_seed.items() if len(models) == 1)


@dataclass(frozen=True)
class Records:
    """Which records the verdict reads: those of the workspace's evaluate and explain configurations, and the
    workspace's model_sha of each model (run.json), which settles a pool where one model has several."""

    evaluate: StageConfig
    explain: StageConfig
    model_shas: dict[str, str]
    config_params: dict[str, str]  # the workspace's training configuration, as runs log it

    @classmethod
    def workspace(cls, params: Params) -> Records:
        runs = {name: RunInfo.load(paths.train_dir(name) / "run.json") for name in params.models}
        return cls(StageConfig.of("evaluate", params.evaluate), StageConfig.of("explain", params.explain),
                   {name: info.model_sha for name, info in runs.items() if info and info.model_sha},
                   config_params(params))


def trainings(runs: list[Any]) -> list[Any]:
    """The training runs among `runs`: the later stages' records copy their tags but name their stage, and the
    verdict's own runs carry config_sha too."""
    return [r for r in runs if STAGE not in r.data.tags and "verdict" not in r.data.tags]


def well_formed(tags: dict[str, str]) -> bool:
    """Whether a run's tags name a model (a valid model name), a decimal seed and a 16-hex config_sha, as training
    writes them.

    Tags are data anyone can set (the MLflow UI, a script): a run with others is skipped and counted, never trusted.
    """
    return (MODEL_NAME.fullmatch(tags.get("model", "")) is not None
            and re.fullmatch(r"\d{1,10}", tags.get("seed", "")) is not None
            and re.fullmatch(r"[0-9a-f]{16}", tags.get("config_sha", "")) is not None)


def select_runs(experiment_id: str, sha: str, baseline: str, candidate: str,
                records: Records) -> tuple[str, list[ModelRun], Counter[str], dict[str, str]]:
    """The finished baseline/candidate runs whose config_sha starts with `sha`, one model_sha per model, with
    their evaluate (and explain) records of `records`' configurations; refuse mixed configurations. Returns the
    full config_sha, the runs, the skipped counts and the model_sha pooled per model."""
    client = mlflow.MlflowClient()
    found = client.search_runs([experiment_id], f"tags.config_sha LIKE '{sha}%'", run_view_type=ViewType.ALL,
                               order_by=["attributes.start_time ASC"], max_results=50_000)
    found = trainings(found)
    malformed = sum(not well_formed(r.data.tags) for r in found)
    found = [r for r in found if well_formed(r.data.tags) and r.data.tags["model"] in (baseline, candidate)]
    shas = sorted({r.data.tags["config_sha"] for r in found})
    if len(shas) > 1:
        raise SeecamError(f"--config-sha {sha} matches mixed configurations ({', '.join(shas)}); "
                          "pass the full config_sha of one")
    full_sha = shas[0] if shas else sha
    skipped: Counter[str] = Counter({"malformed": malformed} if malformed else {})
    finished = []
    for r in found:
        if r.info.lifecycle_stage != "active":
            skipped["deleted"] += 1
        elif r.info.status != "FINISHED":
            skipped[r.info.status.lower()] += 1
        else:
            finished.append(r)
    model_shas = {model: _one_model_sha(model, finished, records, full_sha) for model in (baseline, candidate)}
    latest: dict[tuple[str, int], Any] = {}
    for r in finished:
        model = r.data.tags["model"]
        if r.data.tags.get("model_sha", "") != model_shas[model]:
            skipped["another model_sha"] += 1
            continue
        key = (model, int(r.data.tags["seed"]))
        skipped["superseded"] += key in latest
        latest[key] = r  # sorted by start time: the last one wins
    return full_sha, _with_records(experiment_id, latest, records, skipped, full_sha), skipped, model_shas


def _with_records(experiment_id: str, latest: dict[tuple[str, int], Any], records: Records, skipped: Counter[str],
                  config_sha: str) -> list[ModelRun]:
    """The training runs with the figures of their records of the workspace's configurations; those without an
    evaluate record are skipped and counted (all of them: refused in one line)."""
    parents = [r.info.run_id for r in latest.values()]
    evaluated = stage_records(experiment_id, parents, records.evaluate)
    explained = stage_records(experiment_id, parents, records.explain)
    if latest and not evaluated:
        raise SeecamError(f"no training run of config_sha {config_sha} has a record of this workspace's evaluate "
                          f"configuration (evaluate.* and its code: {records.evaluate.sha}); "
                          "`dvc repro -f -s evaluate` with these params where those models are (each of the sweep's "
                          "experiments: `dvc exp apply` it first) writes them (plain `dvc repro` skips an evaluate "
                          "that DVC sees as up to date)")
    runs = []
    for (model, seed), r in latest.items():
        evaluation = evaluated.get(r.info.run_id)
        if evaluation is None:
            skipped["no evaluate record of this configuration"] += 1
            continue
        explanation = explained.get(r.info.run_id)
        skipped["no explain record of this configuration (faithfulness left out)"] += explanation is None
        metrics = dict(evaluation.data.metrics) | (dict(explanation.data.metrics) if explanation else {})
        runs.append(ModelRun(r.info.run_id, model, seed, metrics, _correct(evaluation.info.run_id),
                             r.data.tags.get("dvc_exp_name", "")))
    return runs


def _one_model_sha(model: str, runs: list[Any], records: Records, config_sha: str) -> str:
    """The one model_sha of `model` to pool: its only one, or the workspace's among several; else refused."""
    shas = sorted({r.data.tags.get("model_sha", "") for r in runs if r.data.tags["model"] == model})
    if len(shas) <= 1:
        return shas[0] if shas else ""
    mine = records.model_shas.get(model)
    if mine in shas:
        return mine
    raise SeecamError(f"{model} has runs of {len(shas)} networks in config_sha {config_sha} (model_sha "
                      f"{', '.join(shas)}) and the workspace's reports/train/{model}/run.json names none of them; "
                      "`dvc exp apply` an experiment of the one to pool (or delete the other's runs) and rerun")


def choose_config(experiment_id: str, baseline: str, candidate: str, uri: str) -> str:
    """The config_sha to pool when none is named: the latest sweep's, else the only one with >= 2 paired seeds.

    A sweep's runs carry its experiment names (`seed-N-<hash>`, tag dvc_exp_name), so this needs nothing
    but the tracking store: no params, no data. Several configurations and no sweep are listed to choose from.
    """
    found = mlflow.MlflowClient().search_runs([experiment_id], "attributes.status = 'FINISHED'",
                                              order_by=["attributes.start_time DESC"], max_results=50_000)
    found = [r for r in trainings(found) if well_formed(r.data.tags) and r.data.tags["model"] in (baseline, candidate)]
    swept = [r for r in found if is_sweep_experiment(r.data.tags.get("dvc_exp_name", ""))]
    if swept:
        return swept[0].data.tags["config_sha"]
    seeds: dict[str, dict[str, set[int]]] = {}
    for r in found:
        seeds.setdefault(r.data.tags["config_sha"], {}).setdefault(r.data.tags["model"], set()).add(
            int(r.data.tags["seed"]))
    paired = {sha: sorted(models.get(baseline, set()) & models.get(candidate, set())) for sha, models in seeds.items()}
    enough = sorted(((sha, s) for sha, s in paired.items() if len(s) >= 2), key=lambda item: (-len(item[1]), item[0]))
    if len(enough) == 1:
        return enough[0][0]
    if not enough:
        raise SeecamError(f"no configuration in {masked(uri)} has >= 2 paired seeds of {baseline} and {candidate}; "
                          f"{RUN_SWEEP}")
    listing = ", ".join(f"{sha} ({len(s)} seeds: {', '.join(map(str, s))})" for sha, s in enough)
    raise SeecamError(f"{len(enough)} configurations have >= 2 paired seeds; choose one with --config-sha: {listing}")


def _correct(run_id: str) -> np.ndarray | None:
    """evaluate's per-image 0/1 string of the run, None if it has none.

    Listed first rather than a failed download taken as "none": a server that dies here must stop the
    verdict in one line (server_errors), not silently drop the pooled bootstrap after minutes of retries.
    """
    folder = CORRECT_ARTIFACT.rsplit("/", 1)[0]
    if CORRECT_ARTIFACT not in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, folder)}:
        return None
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/{CORRECT_ARTIFACT}")
    return np.frombuffer(text.strip().encode(), dtype=np.uint8) == ord("1")
