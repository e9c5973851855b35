"""Dense features of a frozen encoder for the dense probes.

The selected levels (names "c2".."c5", the `Encoder`'s four levels) are resampled to one grid of
(H / feature_stride, W / feature_stride) cells -- area-averaged when finer,
bilinearly upsampled when coarser -- and concatenated along channels. Output
float [N, sum(C_level), H / stride, W / stride] for normalised input [N, 3, H, W].
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from synthssl.train.models.encoder import Encoder

__all__ = ["LEVELS", "DenseFeatures"]

LEVELS = ("c2", "c3", "c4", "c5")


class DenseFeatures(nn.Module):
    """Concatenated multi-stage features on a grid of stride ``feature_stride``."""

    def __init__(self, encoder: nn.Module, levels: Sequence[str] = ("c3", "c4", "c5"), feature_stride: int = 8):
        """encoder: an `Encoder` (or a bare trunk, wrapped; shared, not copied); channels from ``encoder.channels``."""
        super().__init__()
        unknown = [lv for lv in levels if lv not in LEVELS]
        if unknown or not levels:
            raise ValueError(f"dense.levels: expected a non-empty subset of {LEVELS}, got {list(levels)}")
        if feature_stride < 1:
            raise ValueError(f"dense.feature_stride must be >= 1, got {feature_stride}")
        self.encoder = encoder if isinstance(encoder, Encoder) else Encoder(encoder)
        self.level_index = [LEVELS.index(lv) for lv in levels]
        self.feature_stride = feature_stride
        self.channels = sum(self.encoder.channels[i] for i in self.level_index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = max(1, x.shape[-2] // self.feature_stride)
        w = max(1, x.shape[-1] // self.feature_stride)
        maps = self.encoder(x)
        out = []
        for i in self.level_index:
            m = maps[i]
            if m.shape[-2] >= h and m.shape[-1] >= w:
                m = F.adaptive_avg_pool2d(m, (h, w))
            else:
                m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
            out.append(m)
        return torch.cat(out, dim=1)
