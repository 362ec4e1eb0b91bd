"""Class activation maps for a whole batch in one forward and one backward pass.

With A^k the target layer's activation map k and y^c the class score (logit)
of the target class c, G^k = dy^c / dA^k. The methods differ only in how they
weigh the channels (all finish with a ReLU):

    Grad-CAM    (Selvaraju et al., 2017)  L = ReLU(sum_k w_k A^k),  w_k = mean_ij G^k_ij
    Grad-CAM++  (Chattopadhay et al., 2018) w_k = sum_ij a^k_ij ReLU(G^k_ij),
                a^k_ij = (G^k_ij)^2 / (2 (G^k_ij)^2 + sum_ab A^k_ab (G^k_ij)^3)
    HiResCAM    (Draelos & Carin, 2020)   L = ReLU(sum_k G^k * A^k)            (element-wise)
    LayerCAM    (Jiang et al., 2021)      L = ReLU(sum_k ReLU(G^k) * A^k)      (element-wise)

The batch's scores are summed before the backward: in eval mode images do not
interact, so each image's gradient is its own. Raw maps (layer resolution,
unnormalised: comparable across models) are kept beside per-image min-max
normalised maps upsampled bilinearly to the input size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)
from torch import nn

from seecam.errors import SeecamError
from seecam.explain.fold import fold_batchnorm
from seecam.explain.hooks import named_layer, output_shapes, record
from seecam.normalize import Normalizer

CamMethod = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def grad_cam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1)


def grad_cam_plus_plus(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    g2 = g.pow(2)
    denominator = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g2 * g
    alpha = torch.where(g != 0, g2 / torch.where(denominator != 0, denominator, torch.ones_like(denominator)), 0.0)
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    return (weights * a).sum(dim=1)


def hires_cam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g * a).sum(dim=1)


def layer_cam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g.clamp(min=0) * a).sum(dim=1)


METHODS: dict[str, CamMethod] = {
    "gradcam": grad_cam, "gradcam++": grad_cam_plus_plus, "hirescam": hires_cam, "layercam": layer_cam,
}


@dataclass
class CamResult:
    raw: torch.Tensor  # (B, h, w) at the layer's resolution, unnormalised
    maps: torch.Tensor  # (B, H, W) in [0, 1], upsampled to the input
    targets: torch.Tensor  # (B,) explained class
    probabilities: torch.Tensor  # (B, classes) softmax of the model's output


def normalise(maps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-image min-max scaling to [0, 1]; an all-zero map stays zero."""
    flat = maps.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    return (maps - low[:, None, None]) / (high - low + eps)[:, None, None]


def upsample(raw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(raw[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def check_layer(model: nn.Module, layer: str, example: torch.Tensor) -> None:
    """CAMs weigh the channels of a (B, C, H, W) map: refuse any other layer, naming the ones that work."""
    named_layer(model, layer)  # an unknown name lists the known ones
    shapes = output_shapes(model, example)
    if layer in shapes and len(shapes[layer]) == 4:
        return
    valid = ", ".join(name for name, shape in shapes.items() if len(shape) == 4)
    found = f"has a {len(shapes[layer])}-D output" if layer in shapes else "is not run by the model's forward"
    raise SeecamError(f"layer {layer!r} {found}; CAMs need a 4-D (batch, channels, height, width) layer: {valid}")


def cam_batch(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    method: str = "gradcam",
    targets: torch.Tensor | None = None,
) -> CamResult:
    """CAMs of normalised float `inputs` for `targets` (default: the predicted class), batched."""
    with record(model, [layer], graph_from=layer) as recording:
        logits = model(inputs)
        output = recording.outputs.get(layer)
        spatial = output is not None and output.dim() == 4
        if spatial:
            if targets is None:
                targets = logits.argmax(dim=1)
            score = logits.gather(1, targets[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, output)
    if not spatial:  # checked on the forward already run, not by an extra pass per batch
        check_layer(model, layer, inputs[:1])  # raises, naming the layers that work
    activations = recording.activations[layer]
    raw = torch.relu(METHODS[method](activations, gradients))
    maps = normalise(upsample(raw, inputs.shape[-2:]))
    return CamResult(raw.detach(), maps.detach(), targets.detach(), torch.softmax(logits.detach(), dim=1))


def cam_images(
    model: nn.Module, images: torch.Tensor, layer: str, method: str = "gradcam",
    targets: torch.Tensor | None = None, batch_size: int = 250,
) -> CamResult:
    """CAMs of uint8 NCHW images, one forward/backward per chunk of `batch_size`, BatchNorm folded (explain/fold)."""
    normalize = Normalizer.for_model(model, images.device)
    model = fold_batchnorm(model, keep=(layer,))
    parts = []
    for start in range(0, len(images), batch_size):
        chunk_targets = None if targets is None else targets[start:start + batch_size]
        parts.append(cam_batch(model, normalize(images[start:start + batch_size]), layer, method, chunk_targets))
    return CamResult(*(torch.cat([getattr(p, f) for p in parts]) for f in ("raw", "maps", "targets", "probabilities")))
