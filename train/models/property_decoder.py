"""Light FPN/U-Net decoder with depth, normal and contour heads.

Input: the encoder's [c2, c3, c4, c5] (see `Encoder`; ``in_channels`` = ``encoder.channels``). Each level gets a 1x1
lateral conv to ``width`` channels; top-down, each coarser map is upsampled
(bilinear) to the next finer one, added and smoothed by a 3x3 conv + BN + ReLU
(U-Net/FPN style). The finest map (stride of c2, ``encoder.strides[0]``: for ResNets 1/4
of the input with the standard stem, full resolution with the small stem) feeds three
3x3-conv heads:

- ``depth``  [N,1,h,w]: raw linear output in ``depth_units``: ``log_metres`` (log z-depth
  in metres) or ``metres``, as the loss that trains it reads it (`synthssl.train.losses.depth`);
- ``normal`` [N,3,h,w]: unit vectors (L2-normalised over channels), camera frame;
- ``contour`` [N,1,h,w]: logits of "pixel is on an instance contour".

`PropertyDecoder.forward(features, size)` upsamples the outputs bilinearly to
``size`` (the input resolution) so the losses compare at full resolution with the
exact, un-resampled targets; normals are re-normalised after upsampling.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PropertyDecoder(nn.Module):
    """FPN/U-Net decoder with depth, normal and contour heads (see module docstring).

    depth_units: what the raw depth output means (``log_metres`` or ``metres``); the export
    writes it next to the weights so that a reader converts the output the same way.
    """

    def __init__(
        self, in_channels: tuple[int, ...], width: int = 64, depth_units: Literal["log_metres", "metres"] = "log_metres"
    ):
        super().__init__()
        if depth_units not in ("log_metres", "metres"):
            raise ValueError(f"PropertyDecoder: depth_units must be 'log_metres' or 'metres', got {depth_units!r}")
        self.depth_units = depth_units
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.smooth = nn.ModuleList(_conv_bn_relu(width, width) for _ in in_channels[:-1])
        self.depth = nn.Conv2d(width, 1, 3, padding=1)
        self.normal = nn.Conv2d(width, 3, 3, padding=1)
        self.contour = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, features: list[Tensor], size: tuple[int, int] | None = None) -> dict[str, Tensor]:
        x = self.lateral[-1](features[-1])
        for i in range(len(features) - 2, -1, -1):
            lat = self.lateral[i](features[i])
            x = F.interpolate(x, size=lat.shape[-2:], mode="bilinear", align_corners=False) + lat
            x = self.smooth[i](x)
        out = {"depth": self.depth(x), "normal": self.normal(x), "contour": self.contour(x)}
        if size is not None and tuple(x.shape[-2:]) != tuple(size):
            out = {k: F.interpolate(v, size=size, mode="bilinear", align_corners=False) for k, v in out.items()}
        out["normal"] = F.normalize(out["normal"].float(), dim=1, eps=1e-6)
        return out
