"""The explain stage: the same test images through both models, explained side by side.

Writes reports/explain/metrics.json (faithfulness of both models, SE excitation
summaries) and the figures, and logs both to each model's MLflow run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from matplotlib.figure import Figure
from torch import nn

from seecam import paths, tracking
from seecam.atomic import write_json
from seecam.data.store import Dataset
from seecam.errors import SeecamError
from seecam.explain.cam import METHODS, cam_images, check_layer, normalise
from seecam.explain.excitation import excitation_by_class
from seecam.explain.faithfulness import faithfulness
from seecam.explain.hooks import record
from seecam.inference import load_model, predict_logits, to_device
from seecam.models import IMAGE_SIZE
from seecam.normalize import Normalizer
from seecam.params import MODEL_NAMES, ExplainParams
from seecam.plots import close, save_figure
from seecam.plots import explanation as figures
from seecam.preflight import check_tracking, check_writable


def check_inputs(ex: ExplainParams, models: dict[str, nn.Module], test_size: int) -> None:
    """Bad indices, unknown layers or layers without a spatial map fail before any work."""
    too_big = [i for i in ex.images if i >= test_size]
    if too_big:
        raise SeecamError(f"explain.images has index {too_big[0]}, but the test set has {test_size} images "
                          f"(0..{test_size - 1})")
    for model in models.values():
        probe = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE, device=next(model.parameters()).device)
        try:
            check_layer(model, ex.layer, probe)
        except SeecamError as exc:
            raise SeecamError(f"explain.layer: {exc}") from None


def gallery(models: dict[str, nn.Module], images: torch.Tensor, truths: list[str], classes: list[str],
            ex: ExplainParams) -> Figure:
    """Original | CNN Grad-CAM | SE Grad-CAM for each chosen image."""
    panels = {}
    for name, model in models.items():
        cams = cam_images(model, images, ex.layer, batch_size=ex.batch_size)
        confidence = cams.probabilities.gather(1, cams.targets[:, None])[:, 0]
        panels[name] = [figures.Panel(m.cpu().numpy(), classes[t], c.item())
                        for m, t, c in zip(cams.maps, cams.targets, confidence, strict=True)]
    return figures.gradcam_gallery(_rgb(images), truths, panels, ex.images)


def methods_figure(models: dict[str, nn.Module], image: torch.Tensor, layer: str, title: str) -> Figure:
    maps = {name: {method: cam_images(model, image, layer, method).maps[0].cpu().numpy() for method in METHODS}
            for name, model in models.items()}
    return figures.cam_methods(_rgb(image)[0], maps, title)


def feature_figures(name: str, model: nn.Module, image: torch.Tensor, ex: ExplainParams) -> tuple[Figure, Figure]:
    """Feature-map grid of every block, and the tutorial's top channels of the last block."""
    blocks = list(model.block_names)
    with record(model, blocks, gradients=False) as recording:
        model(Normalizer(image.device)(image))
    activations = {b: recording.activations[b][0].cpu().numpy() for b in blocks}
    grid = figures.feature_maps(activations, ex.feature_map_channels, f"{name}: feature maps of image #{ex.images[0]}")
    last = recording.activations[blocks[-1]][0]
    top = last.mean(dim=(1, 2)).topk(min(ex.top_channels, len(last))).indices
    heat = normalise(F.interpolate(last[top][:, None], size=image.shape[-2:], mode="bilinear",
                                   align_corners=False)[:, 0])
    attention = figures.top_channels(_rgb(image)[0], heat.cpu().numpy(), top.tolist(),
                                     f"{name}: most active {blocks[-1]} channels")
    return grid, attention


def confident_mistakes(model: nn.Module, images: torch.Tensor, labels: np.ndarray, classes: list[str],
                       ex: ExplainParams) -> Figure:
    """The model's most confident wrong predictions, each with the CAM of the class it chose."""
    probabilities = torch.softmax(predict_logits(model, images, ex.batch_size), dim=1)
    confidence, predicted = probabilities.max(dim=1)
    wrong = (predicted.cpu().numpy() != labels).nonzero()[0]
    worst = wrong[np.argsort(-confidence[wrong].cpu().numpy(), kind="stable")[: ex.mistakes]]
    if len(worst) == 0:
        return figures.mistakes(np.empty((0, 32, 32, 3)), np.empty((0, 32, 32)), [], "SE: no mistakes on the test set")
    chosen = images[torch.from_numpy(worst).to(images.device)]
    cams = cam_images(model, chosen, ex.layer, targets=predicted[worst], batch_size=ex.batch_size)
    titles = [f"#{i} true {classes[labels[i]]}\nsaid {classes[predicted[i]]} ({confidence[i]:.0%})" for i in worst]
    return figures.mistakes(_rgb(chosen), cams.maps.cpu().numpy(), titles, "SE: most confident mistakes")


def outputs() -> list[str]:
    """Every file the stage writes under reports/explain/ (dvc.yaml's outs and metrics)."""
    per_model = [f"{kind}_{name}.png" for name in MODEL_NAMES for kind in ("feature_maps", "top_channels")]
    return ["metrics.json", "gradcam_side_by_side.png", "cam_methods.png", *per_model, "se_excitation.png",
            "se_mistakes.png"]


def run_explain(ex: ExplainParams, dataset: Dataset, device: torch.device) -> dict[str, Any]:
    models = {name: load_model(paths.model_file(name), name, device)[0] for name in MODEL_NAMES}
    test = dataset.test
    check_inputs(ex, models, len(test.labels))
    check_writable(paths.EXPLAIN_DIR / name for name in outputs())
    check_tracking(MODEL_NAMES)
    classes = list(dataset.classes)
    images = to_device(test.images, device)
    chosen = images[ex.images]
    first = chosen[:1]

    out: dict[str, Figure] = {
        "gradcam_side_by_side.png": gallery(models, chosen, [classes[test.labels[i]] for i in ex.images], classes, ex),
        "cam_methods.png": methods_figure(models, first, ex.layer, f"CAM methods at {ex.layer}, image #{ex.images[0]}"),
    }
    for name, model in models.items():
        out[f"feature_maps_{name}.png"], out[f"top_channels_{name}.png"] = feature_figures(name, model, first, ex)

    samples = min(ex.faithfulness_samples, len(test.labels))
    boxes = test.boxes[:samples] if test.boxes is not None else None
    report: dict[str, Any] = {name: faithfulness(model, images[:samples], ex.layer, ex.deletion_steps,
                                                 ex.batch_size, boxes) for name, model in models.items()}
    excitation = excitation_by_class(models["se"], images, test.labels, len(classes), ex.batch_size)
    report["se"] |= excitation.summary()
    report |= {"layer": ex.layer, "samples": samples}
    out["se_excitation.png"] = figures.se_excitation(excitation.mean, excitation.std, classes)
    out["se_mistakes.png"] = confident_mistakes(models["se"], images, test.labels, classes, ex)

    directory = paths.EXPLAIN_DIR
    write_json(directory / "metrics.json", report)
    for filename, figure in out.items():
        save_figure(figure, directory / filename)
        close(figure)
    for name in MODEL_NAMES:
        with tracking.model_run(name, "explain"):
            tracking.log_values({f"explain/{k}": v for k, v in report[name].items()})
            for filename in out:
                if _belongs_to(filename, name):
                    tracking.log_artifact(directory / filename, "figures/explain")
    return report


def _belongs_to(filename: str, name: str) -> bool:
    """Shared figures go to both runs; per-model ones (feature_maps_se.png) to their own."""
    other = [m for m in MODEL_NAMES if m != name]
    return not any(Path(filename).stem.endswith(f"_{m}") for m in other) and not (
        filename.startswith("se_") and name != "se")


def _rgb(images: torch.Tensor) -> np.ndarray:
    """uint8 NCHW tensor -> NHWC numpy for imshow."""
    return images.permute(0, 2, 3, 1).cpu().numpy()
