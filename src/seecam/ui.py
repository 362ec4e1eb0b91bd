"""`seecam ui` (`make ui`): the MLflow UI on this project's store, ready to read.

It colours every run by its model (the report's figure colours, MLflow's `mlflow.runColor` tag, set only on
runs that have none, so a colour picked in the UI stays), links straight to the views that answer something
(MLflow 3.17 opens an experiment on its GenAI overview): the runs table, its chart view, and a compare view of
the runs that matter now: the latest verdict's seeds, else the latest sweep's, else the workspace's training runs.
The server runs quietly (no line per HTTP request unless asked for), the links come last, and Ctrl-C stops it
with one line (server.serve_until_stopped).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING

from seecam.colours import model_colours
from seecam.credentials import masked
from seecam.errors import SeecamError
from seecam.params import load_params
from seecam.paths import VERDICT_DIR, train_dir
from seecam.server import ServerConfig, serve_until_stopped
from seecam.sweep import is_sweep_experiment
from seecam.tracking.store import RunInfo, default_artifacts_dir, open_experiment, tracking_uri

if TYPE_CHECKING:  # tracking.stages imports mlflow (~2 s), which `seecam check-data` (cli.py imports this) skips
    from seecam.tracking.stages import StageConfig

RUN_COLOUR_TAG = "mlflow.runColor"  # what MLflow 3.17's UI reads for a run's colour (and writes when one is picked)
HINTS = {"runs table": "Columns -> test_acc adds test accuracy to the table",
         "charts": "Search metric charts: ^(test|val)_acc$ puts test_acc per run beside the val_acc curves"}


def colour_runs(experiment_id: str, models: list[str]) -> None:
    """Give each run with a `model` tag its model's colour, unless it has a colour already."""
    import mlflow

    client = mlflow.MlflowClient()
    colours = model_colours(models)
    for run in client.search_runs([experiment_id], "tags.model != ''", max_results=50_000):
        colour = colours.get(run.data.tags["model"])
        if colour and RUN_COLOUR_TAG not in run.data.tags:
            client.set_tag(run.info.run_id, RUN_COLOUR_TAG, colour)


def compare_run_ids(experiment_id: str, names: list[str]) -> tuple[list[str], str]:
    """The runs the compare link opens, and what they are: the latest verdict's (reports/verdict/verdict.json, by
    seed, baseline then candidate), else the latest sweep's configuration's, else those of the workspace's models
    `names` (their run.json)."""
    import mlflow

    from seecam.verdict.record import Verdict

    verdict = Verdict.load(VERDICT_DIR / "verdict.json")
    if verdict is not None:
        ids = [row.runs[model] for row in verdict.per_seed.values() for model in (verdict.baseline, verdict.candidate)
               if model in row.runs]
        if ids:
            return ids, f"the latest verdict's {len(ids)} runs ({verdict.seeds} seeds, config_sha {verdict.config_sha})"
    client = mlflow.MlflowClient()
    finished = client.search_runs([experiment_id], "attributes.status = 'FINISHED' and tags.model != ''",
                                  order_by=["attributes.start_time DESC"], max_results=50_000)
    swept = [r for r in finished if is_sweep_experiment(r.data.tags.get("dvc_exp_name", ""))]
    if swept:
        sha = swept[0].data.tags.get("config_sha")
        runs = sorted((r for r in swept if r.data.tags.get("config_sha") == sha),
                      key=lambda r: (int(r.data.tags.get("seed", 0)), r.data.tags["model"]))
        return [r.info.run_id for r in runs], f"the latest sweep's {len(runs)} runs (config_sha {sha})"
    ids = [info.run_id for name in names if (info := RunInfo.load(train_dir(name) / "run.json"))]
    return ids, "this workspace's training runs"


def evaluate_records(experiment_id: str, training_ids: list[str], config: StageConfig) -> list[str] | None:
    """Each training run's record of evaluate `config` (the workspace's), in the same order, or None unless every
    run has one. test_acc lives on those records (tracking/stages.py), the first metric evaluate logs: the compare
    view of the records opens on it, where the training runs' own view opens on train_loss."""
    from seecam.tracking.stages import stage_records

    records = stage_records(experiment_id, training_ids, config)
    return [records[run_id].info.run_id for run_id in training_ids] if set(records) >= set(training_ids) else None


def compare_url(base: str, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow 3.17's compare view of `run_ids` (any runs of the experiment: training runs, or their children)."""
    runs = urllib.parse.quote(json.dumps(run_ids, separators=(",", ":")))
    experiments = urllib.parse.quote(json.dumps([experiment_id]))
    return f"{base}/#/compare-runs?runs={runs}&experiments={experiments}"


def ui_urls(base: str, experiment_id: str, run_ids: list[str], what: str) -> dict[str, tuple[str, str]]:
    """Label -> (URL, what it shows)."""
    runs_table = f"{base}/#/experiments/{experiment_id}/runs"
    urls = {"runs table": (runs_table, HINTS["runs table"]),
            "charts": (f"{runs_table}?compareRunsMode=CHART", HINTS["charts"])}
    if len(run_ids) >= 2:
        urls["compare"] = (compare_url(base, experiment_id, run_ids), f"{what}, side by side")
    return urls


def ui(port: int, access_log: bool) -> None:
    """Colour the runs, start `mlflow server` (one worker) on the project's store, print the links once it answers."""
    params = load_params()
    uri = tracking_uri(params.tracking)
    if uri.startswith(("http://", "https://")):
        raise SeecamError(f"the tracking store is already a server ({masked(uri)}); open it in a browser")
    experiment_id = open_experiment(params.tracking)
    colour_runs(experiment_id, list(params.models))
    from seecam.tracking.stages import StageConfig

    run_ids, what = compare_run_ids(experiment_id, list(params.models))
    records = evaluate_records(experiment_id, run_ids, StageConfig.of("evaluate", params.evaluate))
    if records:
        run_ids, what = records, f"{what}: their evaluate records, test_acc first"
    base = f"http://127.0.0.1:{port}"
    print(f"MLflow UI for experiment '{params.tracking.experiment}' ({masked(uri)}): {base}, Ctrl-C stops it",
          flush=True)

    def links() -> None:
        for label, (url, hint) in ui_urls(base, experiment_id, run_ids, what).items():
            print(f"  {label + ':':<12} {url}  ({hint})", flush=True)

    serve_until_stopped(ServerConfig(uri, str(default_artifacts_dir()), port=port), access_log, links)
