"""The explain stage: the same test images through every model of params.yaml, explained side by side.

Writes reports/explain/metrics.json (faithfulness of every model, excitation summaries of the models whose kind
has gates: SE, ECA) and the figures, and logs each model's metrics and the figures it appears in to its record:
a child of its training run for this explain configuration (tracking/stages.py). The figures of all models are
files of their own; each model's own figures (feature maps, top channels) are in reports/explain/models/, one
DVC output for any number of models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from matplotlib.figure import Figure
from torch import nn

from seecam import paths
from seecam.atomic import write_json
from seecam.code_version import check_train_stages
from seecam.data.store import Dataset
from seecam.errors import SeecamError
from seecam.explain.cam import METHODS, cam_images, check_layer, normalise
from seecam.explain.excitation import excitation_by_class
from seecam.explain.faithfulness import faithfulness
from seecam.explain.fold import fold_batchnorm
from seecam.explain.hooks import record
from seecam.inference import load_model, predict_logits, to_device
from seecam.models import gates
from seecam.normalize import Normalizer
from seecam.params import IMAGE_SIDE, ExplainParams
from seecam.plots import close, save_figure
from seecam.plots import explanation as figures
from seecam.stage_clock import StageClock
from seecam.stage_metrics import ExplainMetrics
from seecam.titles import title
from seecam.tracking.stages import StageConfig, log_artifact, log_values, stage_record


def check_inputs(ex: ExplainParams, models: dict[str, nn.Module], test_size: int) -> None:
    """Bad indices, unknown layers or layers without a spatial map fail before any work."""
    too_big = [i for i in ex.images if i >= test_size]
    if too_big:
        raise SeecamError(f"explain.images has index {too_big[0]}, but the test set has {test_size} images "
                          f"(0..{test_size - 1})")
    for model in models.values():
        probe = torch.zeros(1, 3, IMAGE_SIDE, IMAGE_SIDE, device=next(model.parameters()).device)
        try:
            check_layer(model, ex.layer, probe)
        except SeecamError as exc:
            raise SeecamError(f"explain.layer: {exc}") from None


def gallery(models: dict[str, nn.Module], images: torch.Tensor, truths: list[str], classes: list[str],
            ex: ExplainParams) -> Figure:
    """Original | one Grad-CAM per model (CNN, SE, ...) for each chosen image."""
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
        model(Normalizer.for_model(model, image.device)(image))
    activations = {b: recording.activations[b][0].cpu().numpy() for b in blocks}
    grid = figures.feature_maps(activations, ex.feature_map_channels, f"{name}: feature maps of image #{ex.images[0]}")
    last = recording.activations[blocks[-1]][0]
    top = last.mean(dim=(1, 2)).topk(min(ex.top_channels, len(last))).indices
    heat = normalise(F.interpolate(last[top][:, None], size=image.shape[-2:], mode="bilinear",
                                   align_corners=False)[:, 0])
    attention = figures.top_channels(_rgb(image)[0], heat.cpu().numpy(), top.tolist(),
                                     f"{name}: most active {blocks[-1]} channels")
    return grid, attention


def confident_mistakes(models: dict[str, nn.Module], images: torch.Tensor, labels: np.ndarray,
                       classes: list[str], ex: ExplainParams) -> Figure:
    """Each model's most confident wrong predictions, each with the CAM of the class it chose."""
    rgb, maps, titles = [], [], []
    for name, model in models.items():
        probabilities = torch.softmax(predict_logits(fold_batchnorm(model), images, ex.batch_size), dim=1)
        confidence, predicted = probabilities.max(dim=1)
        wrong = (predicted.cpu().numpy() != labels).nonzero()[0]
        worst = wrong[np.argsort(-confidence[wrong].cpu().numpy(), kind="stable")[: ex.mistakes]]
        if len(worst) == 0:
            continue
        chosen = images[torch.from_numpy(worst).to(images.device)]
        cams = cam_images(model, chosen, ex.layer, targets=predicted[worst], batch_size=ex.batch_size)
        rgb.append(_rgb(chosen))
        maps.append(cams.maps.cpu().numpy())
        who = f"{name} " if len(models) > 1 else ""
        titles += [f"{who}#{i} true {classes[labels[i]]}\nsaid {classes[predicted[i]]} ({confidence[i]:.0%})"
                   for i in worst]
    names = ", ".join(map(title, models))
    what = "most confident mistakes" if titles else "no mistakes on the test set"
    if not titles:
        rgb, maps = [np.empty((0, IMAGE_SIDE, IMAGE_SIDE, 3))], [np.empty((0, IMAGE_SIDE, IMAGE_SIDE))]
    return figures.mistakes(np.concatenate(rgb), np.concatenate(maps), titles, f"{names}: {what}")


def run_explain(ex: ExplainParams, names: list[str], dataset: Dataset, device: torch.device) -> ExplainMetrics:
    """Explain models `names` (params.yaml's), write reports/explain/*, log each model's record."""
    check_train_stages(names)
    models = {name: load_model(paths.model_file(name), name, device)[0] for name in names}
    gated = {name: model for name, model in models.items() if gates(model)}
    test = dataset.test
    check_inputs(ex, models, len(test.labels))
    classes = list(dataset.classes)
    images = to_device(test.images, device)
    chosen = images[ex.images]
    first = chosen[:1]

    timer = StageClock()
    # path -> (figure, the models whose MLflow records it goes to)
    out: dict[Path, tuple[Figure, list[str]]] = {}
    directory = paths.EXPLAIN_DIR
    with timer.part("gallery"):
        truths = [classes[test.labels[i]] for i in ex.images]
        out[directory / "gradcam_side_by_side.png"] = (gallery(models, chosen, truths, classes, ex), list(models))
    with timer.part("cam_methods"):
        title = f"CAM methods at {ex.layer}, image #{ex.images[0]}"
        out[directory / "cam_methods.png"] = (methods_figure(models, first, ex.layer, title), list(models))
    with timer.part("feature maps"):
        for name, model in models.items():
            grid, attention = feature_figures(name, model, first, ex)
            out[paths.EXPLAIN_MODELS_DIR / f"feature_maps_{name}.png"] = (grid, [name])
            out[paths.EXPLAIN_MODELS_DIR / f"top_channels_{name}.png"] = (attention, [name])

    samples = min(ex.faithfulness_samples, len(test.labels))
    boxes = test.boxes[:samples] if test.boxes is not None else None
    with timer.part("faithfulness", f"{samples:,} images"):
        scores = {name: faithfulness(model, images[:samples], ex.layer, ex.deletion_steps, ex.batch_size, boxes)
                  for name, model in models.items()}
    excitation = {}
    with timer.part("excitation", f"{len(test.labels):,} images"):
        for name, model in gated.items():
            excitation[name] = excitation_by_class(model, images, test.labels, len(classes), ex.batch_size)
            scores[name] |= excitation[name].summary()
        out[directory / "se_excitation.png"] = (figures.se_excitation(
            {n: (e.mean, e.std, models[n].gate_name) for n, e in excitation.items()}, classes), list(gated))
    report = ExplainMetrics(scores, ex.layer, samples)
    with timer.part("mistakes"):
        out[directory / "se_mistakes.png"] = (confident_mistakes(gated, images, test.labels, classes, ex),
                                              list(gated))

    with timer.part("writing"):
        write_json(ExplainMetrics.FILE, report.to_json())
        for path, (figure, _) in out.items():
            save_figure(figure, path)
            close(figure)
    with timer.part("mlflow"):
        config = StageConfig.of("explain", ex)
        for name in models:
            with stage_record(name, config, {"device": device.type, "data_sha256": dataset.sha256}) as run_id:
                log_values(run_id, {f"explain/{k}": v for k, v in report.models[name].items()})
                for path, (_, shown) in out.items():
                    if name in shown:
                        log_artifact(run_id, path, "figures/explain")
    print(timer.line("explain"), flush=True)
    return report


def _rgb(images: torch.Tensor) -> np.ndarray:
    """uint8 NCHW tensor -> NHWC numpy for imshow."""
    return images.permute(0, 2, 3, 1).cpu().numpy()
