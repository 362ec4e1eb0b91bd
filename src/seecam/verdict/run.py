"""`seecam verdict`: pool, pair and summarise one configuration's seeds, write reports/verdict/ and log the
`verdict` MLflow run, which a rerun over the same runs and record configurations updates instead of adding another.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import replace
from pathlib import Path

import mlflow
from mlflow.entities import Param

from seecam import paths
from seecam.config_loader import shown
from seecam.credentials import masked
from seecam.errors import SeecamError
from seecam.params import Params
from seecam.titles import title
from seecam.tracking.stages import log_artifact, log_values, run_by_id
from seecam.tracking.store import find_experiment, server_errors, tracking_uri
from seecam.verdict.pooling import RUN_SWEEP, Records, choose_config, pair_runs, select_runs
from seecam.verdict.record import Pair, Verdict
from seecam.verdict.render import OUTPUTS, skipped_text, write_outputs
from seecam.verdict.summary import summarize


def run_verdict(params: Params, sha: str | None, baseline: str, candidate: str,
                out: Path = paths.VERDICT_DIR) -> Verdict:
    """Select, pair, summarise; write reports/verdict/* and log the verdict run."""
    for name in (baseline, candidate):
        params.model(name)  # an unknown model is one line naming params.yaml's
    if baseline == candidate:
        raise SeecamError(f"--candidate must differ from --baseline (both are {shown(baseline)})")
    if sha is not None and not re.fullmatch(r"[0-9a-f]{1,16}", sha):
        raise SeecamError(f"--config-sha must be 1-16 hex digits (a config_sha tag or its prefix), got {shown(sha)}")
    uri = tracking_uri(params.tracking)
    with server_errors(uri, "nothing it pooled was changed: rerun `seecam verdict` once it is back"):
        experiment_id = find_experiment(params.tracking)
        if experiment_id is None:
            raise SeecamError(f"no MLflow experiment {shown(params.tracking.experiment)} in {masked(uri)}; {RUN_SWEEP}")
        return _pool_and_log(experiment_id, sha, baseline, candidate, uri, out, Records.workspace(params))


def _pool_and_log(experiment_id: str, sha: str | None, baseline: str, candidate: str, uri: str,
                  out: Path, records: Records) -> Verdict:
    """The verdict over the runs of config_sha `sha` (chosen when None), written to `out` and logged."""
    sha = sha or choose_config(experiment_id, baseline, candidate, uri)
    full_sha, runs, skipped, model_shas = select_runs(experiment_id, sha, baseline, candidate, records)
    pairs, unpaired = pair_runs(runs, baseline, candidate)
    if len(pairs) < 2:
        missing = f" (seeds {', '.join(map(str, unpaired))} lack one model)" if unpaired else ""
        left_out = f"; skipped: {skipped_text(skipped)}" if skipped else ""
        logged = mlflow.MlflowClient().get_run(runs[0].run_id).data.params if runs else {}
        raise SeecamError(f"{len(pairs)} paired seed(s) of {baseline} and {candidate} for config_sha {full_sha} "
                          f"in {masked(uri)}{missing}{left_out}; the verdict needs >= 2: "
                          f"{sweep_hint(logged, records.config_params)}")
    verdict = replace(summarize(pairs, baseline, candidate, full_sha),
                      skipped=dict(skipped) | {"unpaired": len(unpaired)}, model_shas=model_shas,
                      evaluate_config_sha=records.evaluate.sha, explain_config_sha=records.explain.sha,
                      explain_layer=records.explain.params.get("explain.layer", ""))
    return _log(verdict, pairs, sorted(r.run_id for r in runs), experiment_id, records, out)


def _log(verdict: Verdict, pairs: list[Pair], pooled: list[str], experiment_id: str, records: Records,
         out: Path) -> Verdict:
    """The verdict run (the one over the same runs and records if there is one, else a new one) with the
    verdict's runs, numbers and OUTPUTS; returns the verdict with its run id."""
    baseline, candidate = verdict.baseline, verdict.candidate
    key = hashlib.sha256(json.dumps([baseline, candidate, pooled, records.evaluate.sha,
                                     records.explain.sha]).encode()).hexdigest()[:16]
    client = mlflow.MlflowClient()
    previous = client.search_runs([experiment_id], f"tags.verdict_of = '{key}'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
    reused = previous[0] if previous else None  # the same runs pooled again: update that run
    logged = reused.data.metrics if reused else {}
    name = f"verdict · {title(candidate)} vs {title(baseline)} · {len(pairs)} seeds"
    tags = {"config_sha": verdict.config_sha, "verdict": "true", "verdict_of": key, "pooled_runs": ",".join(pooled),
            "evaluate_config_sha": records.evaluate.sha, "explain_config_sha": records.explain.sha}
    with run_by_id(client, reused.info.run_id if reused else None, experiment_id, name, tags) as run_id:
        verdict = replace(verdict, mlflow_run_id=run_id)
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in (  # the same values again when reused
            {"baseline": baseline, "candidate": candidate, "seeds": len(pairs)}
            | {f"run.{p.seed}.{role}": getattr(p, role).run_id for p in pairs
               for role in ("baseline", "candidate")}).items()])
        values = {"acc_diff_mean": float(verdict.acc_diff_mean), "acc_diff_t_low": float(verdict.acc_diff_t_low),
                  "acc_diff_t_high": float(verdict.acc_diff_t_high)}
        log_values(run_id, {k: v for k, v in values.items() if logged.get(k) != v})
        write_outputs(verdict, out)
        for filename in OUTPUTS:
            log_artifact(run_id, out / filename, "verdict")
    return verdict


def sweep_hint(logged: dict[str, str], workspace: dict[str, str]) -> str:
    """RUN_SWEEP for the configuration runs `logged`: with the `-S` overrides that turn the workspace's params
    into theirs (a sweep of the workspace's own would make another configuration's seeds)."""
    overrides = [f"-S {shlex.quote(f'{k}={v}')}" for k, v in logged.items() if k in workspace and workspace[k] != v]
    if not overrides:
        return RUN_SWEEP
    return f"queue seeds of this configuration with `seecam sweep --seeds 0-2 {' '.join(overrides)} --run -j 2`"
