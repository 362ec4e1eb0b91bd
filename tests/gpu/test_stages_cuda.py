"""The stage scripts on CUDA (train, evaluate, explain on a tiny synthetic project), and Grad-CAM on CUDA ==
CPU. Skipped with a reason where no GPU is visible; the GPU machine has no dvc, so the stages run as DVC would
run them: `python stages/<stage>.py` from the project root (../shared/gpu/README.md).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seecam.device import exact_fp32
from seecam.explain.cam import METHODS, cam_images
from seecam.inference import load_model, predict_logits, to_device

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA GPU; run on the lent GPU machine (../shared/gpu/README.md)"),
              pytest.mark.e2e]
REPO = Path(__file__).resolve().parents[2]
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A tiny synthetic project run through every stage on CUDA; returns its root and each stage's stdout."""
    root = tmp_path_factory.mktemp("gpu-project")
    for folder in ("stages", "src"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("params.yaml", "dvc.yaml"):  # dvc.yaml names each stage's code (its digest keys checkpoints)
        shutil.copy2(REPO / name, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"] |= {"source": "synthetic", "val_size": 100,
                       "synthetic": {"train_size": 1500, "test_size": 300, "seed": 0}}
    params["train"] |= {"epochs": 3, "device": "cuda"}
    params["evaluate"]["device"] = params["explain"]["device"] = "cuda"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    logs = {}
    for stage, *args in (["download"], ["train", "cnn"], ["train", "se"], ["evaluate"], ["explain"]):
        done = subprocess.run([sys.executable, f"stages/{stage}.py", *args], cwd=root, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, f"{stage} {args} failed:\n{done.stdout}\n{done.stderr}"
        logs[" ".join([stage, *args])] = done.stdout
    return root, logs


def test_every_stage_runs_on_cuda_and_the_models_learn(project):
    root, logs = project
    for name in ("cnn", "se"):
        assert "device cuda" in logs[f"train {name}"] and f"{name}: startup " in logs[f"train {name}"]
    evaluation = json.loads((root / "reports/evaluate/metrics.json").read_text())
    explanation = json.loads((root / "reports/explain/metrics.json").read_text())
    for name in ("cnn", "se"):
        assert evaluation[name]["test_acc"] > 0.3  # chance is 0.1
        assert 0 <= explanation[name]["deletion_auc"] <= 1
    assert sorted(p.name for p in (root / "reports/explain").glob("*.png"))


def test_predictions_and_every_cam_on_cuda_equal_the_cpu_ones(project):
    root, _ = project
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    exact_fp32(CUDA)  # what the evaluate and explain stages set on CUDA
    try:
        images = to_device(np.load(root / "data/cifar10/test_images.npy")[:32], torch.device("cpu"))
        for name in ("cnn", "se"):
            on_cpu, _ = load_model(root / f"models/{name}.pt", name, torch.device("cpu"))
            on_cuda, _ = load_model(root / f"models/{name}.pt", name, CUDA)
            torch.testing.assert_close(predict_logits(on_cuda, images.to(CUDA)).cpu(), predict_logits(on_cpu, images),
                                       atol=1e-4, rtol=1e-4)
            for method in METHODS:
                cpu = cam_images(on_cpu, images, "block3", method)
                cuda = cam_images(on_cuda, images.to(CUDA), "block3", method)
                assert torch.equal(cuda.targets.cpu(), cpu.targets), (name, method)
                torch.testing.assert_close(cuda.maps.cpu(), cpu.maps, atol=1e-4, rtol=0)
                torch.testing.assert_close(cuda.raw.cpu(), cpu.raw, atol=1e-4 * float(cpu.raw.max()), rtol=0)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
