"""Training-like runs and their evaluate and explain records in an MLflow store, as training and
tracking.stages write them, for the verdict's tests (no training)."""

import mlflow

from helpers import REPO
from seecam.params import EvaluateParams, ExplainParams
from seecam.tracking.stages import CORRECT_ARTIFACT, PARENT, STAGE, StageConfig

SHA = "abcdef0123456789"
EVALUATE = StageConfig.of("evaluate", EvaluateParams())  # the workspace's, with the repo's params and code
EXPLAIN = StageConfig.of("explain", ExplainParams())


def code_only_workspace(root, monkeypatch) -> None:
    """cwd = a workspace with the repo's code and no data, no outputs (a clone that pulled nothing)."""
    monkeypatch.chdir(root)
    for name in ("dvc.yaml", "src", "stages"):
        (root / name).symlink_to(REPO / name)


def record(experiment: str, parent: str, config: StageConfig, metrics: dict[str, float], text: str = "") -> str:
    """A later stage's record of `config` under training run `parent`, as tracking.stages writes it."""
    tags = {PARENT: parent, STAGE: config.stage, "stage_config_sha": config.sha, "stage_sha": f"{parent}{config.sha}"}
    with mlflow.start_run(experiment_id=experiment, tags=tags, nested=True) as run:
        mlflow.log_metrics(metrics)
        if text:
            mlflow.log_text(text, CORRECT_ARTIFACT)
    return run.info.run_id


def log_run(experiment: str, model: str, seed: int, acc: float, sha: str = SHA, status: str = "FINISHED",
            evaluated: bool = True, explained: bool = False, images: int = 20, exp_name: str = "",
            model_sha: str = "", explain: StageConfig = EXPLAIN, auc: float | None = None) -> str:
    tags = {"model": model, "seed": str(seed), "config_sha": sha, "model_sha": model_sha or f"{model}-net"}
    tags |= {"dvc_exp_name": exp_name} if exp_name else {}
    with mlflow.start_run(experiment_id=experiment, run_name=model, tags=tags) as run:
        pass
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    if evaluated:
        right = round(acc * images)
        record(experiment, run.info.run_id, EVALUATE, {"test_acc": acc, "test_acc/cat": acc + 0.05,
                                                       "test_acc/dog": acc - 0.05},
               "1" * right + "0" * (images - right))
    if explained:
        record(experiment, run.info.run_id, explain,
               {"explain/deletion_auc": 0.2 + seed / 100 if auc is None else auc, "explain/insertion_auc": 0.6})
    return run.info.run_id


def sweep(experiment: str, accs: dict[int, tuple[float, float]], **kwargs) -> None:
    for seed, (cnn, se) in accs.items():
        log_run(experiment, "cnn", seed, cnn, **kwargs)
        log_run(experiment, "se", seed, se, **kwargs)
