"""`Encoder`: the one backbone object of a method (trunk, multi-scale levels, memory layout).

A method registers exactly one ``self.encoder = build_encoder(ctx.arch, ctx.small_stem)``
(and a momentum copy when it has a key/target encoder); heads, the property decoder and
the eval probes size themselves from ``encoder.channels`` and ``encoder.strides``.

- ``encoder.trunk``: the backbone itself, the module whose weights are exported: a
  torchvision ResNet (``model.arch: resnet18|resnet34|resnet50``, the default family,
  `synthssl.train.models.backbone`) or a timm ``features_only`` model
  (``model.arch: timm:NAME``, `synthssl.train.models.timm_backbone`).
- ``encoder(x)``: images float [N, 3, H, W] (normalised) -> list of four maps
  [c2, c3, c4, c5], level i float [N, channels[i], ~H/strides[i], ~W/strides[i]].
  The input is put into channels_last when the trunk's weights are (``model.channels_last``).
- ``encoder.pooled(x)``: global average of c5, float [N, channels[-1]].

State-dict keys are the trunk's under ``trunk.`` (a method's checkpoint holds
``encoder.trunk.*``; there are no aliases). torch.compile of a method compiles this
module, whose forward is the one that runs.
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor, nn

from synthssl.train.models.backbone import (
    LEVEL_INDEX,
    build_backbone,
    pooled,
    resnet_channels,
    resnet_levels,
    resnet_strides,
)
from synthssl.train.models.timm_backbone import (
    build_timm_backbone,
    is_timm_arch,
    is_timm_trunk,
    timm_channels,
    timm_name,
    timm_strides,
)

__all__ = ["Encoder", "build_encoder", "LEVEL_INDEX"]


class Encoder(nn.Module):
    """A backbone trunk behind one interface (see the module docstring)."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        if isinstance(trunk, torchvision.models.ResNet):
            self.family = "torchvision"
            channels, strides = resnet_channels(trunk), resnet_strides(trunk)
        elif is_timm_trunk(trunk):
            self.family = "timm"
            channels, strides = timm_channels(trunk), timm_strides(trunk)
        else:
            raise TypeError(
                f"Encoder: expected a torchvision ResNet or a timm features_only model, got {type(trunk).__name__}"
            )
        self.trunk = trunk
        self.channels: tuple[int, ...] = tuple(channels)
        self.strides: tuple[int, ...] = tuple(strides)
        # The first convolution's weight tells the memory layout the trunk was put in.
        self._layout_weight = next(n for n, p in trunk.named_parameters() if p.dim() == 4)

    def input_layout(self, x: Tensor) -> Tensor:
        """x [N,3,H,W] in channels_last when the trunk's first conv weight is (else unchanged)."""
        w = self.trunk.get_parameter(self._layout_weight)
        if w.is_contiguous(memory_format=torch.channels_last) and w.shape[-1] > 1:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.input_layout(x)
        if self.family == "torchvision":
            return resnet_levels(self.trunk, x)
        return list(self.trunk(x))

    def pooled(self, x: Tensor) -> Tensor:
        """Global-average-pooled c5 of images x: float [N, channels[-1]]."""
        return pooled(self(x)[-1])


def build_encoder(arch: str = "resnet18", small_stem: bool = False) -> Encoder:
    """A randomly initialised `Encoder` for ``model.arch`` (``resnet18|34|50`` or ``timm:NAME``)."""
    if is_timm_arch(arch):
        return Encoder(build_timm_backbone(timm_name(arch), small_stem))
    return Encoder(build_backbone(arch, small_stem))
