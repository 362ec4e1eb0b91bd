"""Every output path of the pipeline, relative to the repo root where DVC runs stages, and the stage that trains
each model.

These names are the contract listed in README.md ("What the pipeline does" and "What it produces"):
dvc.yaml, docs and checks rely on them.
"""

from pathlib import Path

PARAMS = Path("params.yaml")
DATA_DIR = Path("data/cifar10")
RAW_DIR = Path("data/raw")
DATA_CHECKS = Path("reports/data_checks.json")
MODELS_DIR = Path("models")
CHECKPOINTS_DIR = Path("checkpoints")
TRAIN_REPORTS = Path("reports/train")
EVALUATE_DIR = Path("reports/evaluate")
EXPLAIN_DIR = Path("reports/explain")
REPORT_HTML = Path("reports/index.html")
VERDICT_DIR = Path("reports/verdict")  # written by `seecam verdict`, not a stage; the report reads verdict.json


def train_stage(name: str) -> str:
    """train_<name>: the dvc.yaml stage that trains model `name` and writes its model_file and train_dir."""
    return f"train_{name}"


def model_file(name: str) -> Path:
    """models/<name>.pt: state dict plus the config that rebuilds it."""
    return MODELS_DIR / f"{name}.pt"


def train_dir(name: str) -> Path:
    """reports/train/<name>/: history.csv, iterations.csv, run.json."""
    return TRAIN_REPORTS / name


def train_outputs(name: str) -> list[Path]:
    """Everything train_stage(name) writes (its outs in dvc.yaml): checked writable before the first epoch."""
    return [model_file(name), *(train_dir(name) / f for f in ("history.csv", "iterations.csv", "run.json"))]


EVALUATE_FIGURES = (EVALUATE_DIR / "confusion.png", EVALUATE_DIR / "reliability.png",
                    EVALUATE_DIR / "per_class_accuracy.png")
# every model's reports/train/<name>/<file> as one long table (history.long_table), for dvc.yaml's plots
EVALUATE_TRAINING_TABLES = {EVALUATE_DIR / "training_history.csv": "history.csv",
                            EVALUATE_DIR / "training_iterations.csv": "iterations.csv"}
EXPLAIN_MODELS_DIR = EXPLAIN_DIR / "models"  # each model's own figures: one DVC output (a folder) for any models


def evaluate_outputs() -> list[Path]:
    """Everything the evaluate stage writes (its outs and metrics in dvc.yaml)."""
    written = (EVALUATE_DIR / name for name in ("metrics.json", "confusion.json", "comparison.md"))
    return [*written, *EVALUATE_FIGURES, *EVALUATE_TRAINING_TABLES]


def explain_outputs(names: list[str]) -> list[Path]:
    """Everything the explain stage writes for models `names` (its outs and metrics in dvc.yaml)."""
    shared = ["metrics.json", "gradcam_side_by_side.png", "cam_methods.png", "se_excitation.png", "se_mistakes.png"]
    own = [EXPLAIN_MODELS_DIR / f"{kind}_{name}.png" for name in names for kind in ("feature_maps", "top_channels")]
    return [EXPLAIN_DIR / name for name in shared] + own


def checkpoint_file(name: str, fingerprint: str) -> Path:
    """checkpoints/<name>-<fingerprint[:16]>.ckpt: scratch state for resuming, outside every DVC output.

    The fingerprint in the name keeps queued experiments with other inputs from clobbering each other.
    """
    return CHECKPOINTS_DIR / f"{name}-{fingerprint[:16]}.ckpt"


def finished_file(name: str, fingerprint: str, epochs: int) -> Path:
    """checkpoints/<name>-<fingerprint[:16]>-<epochs>.done: a finished training's record, reused by a rerun of the
    same identity (train.py); the epochs in the name keep a longer run from overwriting a shorter one's."""
    return CHECKPOINTS_DIR / f"{name}-{fingerprint[:16]}-{epochs}.done"
