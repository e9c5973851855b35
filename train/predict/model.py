"""`Predictor`: an export's backbone and property decoder, producing readable maps.

Conventions of `Predictor.forward` (input float [N, 3, H, W], normalised as the
export's ``backbone.json`` says; H, W multiples of ``multiple``):

- ``depth`` float [N, H, W] > 0: z-depth along the optical axis, *relative*: the heads
  were trained on metric synthetic scenes with a loss that ignores half of the global
  log-scale, so on a photo only ratios and order are meaningful (larger = farther);
  it is ``exp(raw)`` for ``log_metres`` exports, ``max(raw, 1e-6)`` for ``metres``;
- ``normal`` float [N, 3, H, W]: unit normals in the OpenCV camera frame (x right,
  y down, z forward), facing the camera (z < 0);
- ``contour`` float [N, H, W] in [0, 1]: probability of an instance contour.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from synthssl.train.export import find_export, load_encoder, load_heads
from synthssl.train.models.encoder import Encoder

__all__ = ["Predictor", "load_predictor"]


class Predictor(nn.Module):
    """Encoder + property decoder of an export (see the module docstring for the outputs).

    backbone: an `Encoder` or a bare trunk (torchvision ResNet / timm features_only model).
    """

    def __init__(self, backbone: nn.Module, decoder: nn.Module, meta: dict):
        super().__init__()
        self.encoder = backbone if isinstance(backbone, Encoder) else Encoder(backbone)
        self.decoder = decoder
        self.meta = meta
        heads = meta["heads"]
        self.mean, self.std = tuple(heads["input"]["mean"]), tuple(heads["input"]["std"])
        self.multiple = int(heads["input_multiple"])
        self.log_depth = heads["depth"] == "log_metres"

    @torch.no_grad()
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        raw = self.decoder(self.encoder(x), size=tuple(x.shape[-2:]))
        d = raw["depth"][:, 0].float()
        depth = torch.exp(d.clamp(-30.0, 30.0)) if self.log_depth else d.clamp_min(1e-6)
        return {"depth": depth, "normal": raw["normal"].float(), "contour": torch.sigmoid(raw["contour"][:, 0].float())}


def load_predictor(path: str | Path, device: torch.device | str = "cpu") -> Predictor:
    """`Predictor` of the export at ``path`` (run, export folder or backbone.pt with backbone.json), eval mode.

    Raises `synthssl.train.export.NoHeadsError` (naming the method) for an export without heads, and
    FileNotFoundError naming ``run`` when ``path`` is no export (`synthssl.train.export.find_export`).
    """
    export = find_export(path, "run")
    encoder, meta = load_encoder(export)
    decoder, _ = load_heads(export, meta)
    return Predictor(encoder, decoder, meta).eval().to(device)
