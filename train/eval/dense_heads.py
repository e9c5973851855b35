"""Probe heads and their losses for the four dense tasks.

Heads read standardised dense features [N, C, h, w] and return, at the same
resolution, ``depth`` [N, 1] (log metres), ``normal`` [N, 3] (unnormalised),
``contour`` [N, 1] (logit) and ``segmentation`` [N, K] (class logits).
``kind="linear"``: one 1x1 convolution per task (a linear probe).
``kind="light"``: per task conv3x3 -> BatchNorm -> ReLU -> conv1x1 (``hidden`` channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TASK_CHANNELS", "DenseHeads", "dense_probe_losses"]

#: Output channels per task (segmentation: number of categories, set at construction).
TASK_CHANNELS = {"depth": 1, "normal": 3, "contour": 1}


def _head(kind: str, in_channels: int, out_channels: int, hidden: int) -> nn.Module:
    if kind == "linear":
        return nn.Conv2d(in_channels, out_channels, 1)
    if kind == "light":
        return nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1),
        )
    raise ValueError(f"dense.head: expected 'linear' or 'light', got {kind!r}")


class DenseHeads(nn.Module):
    """One head per task; ``forward(features) -> dict[task, logits at feature resolution]``."""

    def __init__(self, in_channels: int, num_categories: int, kind: str = "linear", hidden: int = 128):
        super().__init__()
        channels = {**TASK_CHANNELS, "segmentation": num_categories}
        self.heads = nn.ModuleDict({t: _head(kind, in_channels, c, hidden) for t, c in channels.items()})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: head(features) for t, head in self.heads.items()}


def dense_probe_losses(
    outputs: dict[str, torch.Tensor],
    depth: torch.Tensor,
    normal: torch.Tensor,
    contour: torch.Tensor,
    category: torch.Tensor,
    contour_pos_weight: float,
) -> dict[str, torch.Tensor]:
    """Per-task losses at full resolution (outputs are bilinearly upsampled first).

    depth [N, H, W] metres (0 invalid): L1 on log depth over valid pixels;
    normal [N, 3, H, W] (0 invalid): mean (1 - cos) over valid pixels;
    contour [N, H, W] {0, 1}: BCE with logits, positives weighted by ``contour_pos_weight``;
    category [N, H, W] long: cross-entropy.
    """
    names = list(outputs)
    stacked = F.interpolate(
        torch.cat([outputs[t] for t in names], dim=1), size=depth.shape[-2:], mode="bilinear", align_corners=False
    )
    up = dict(zip(names, stacked.split([outputs[t].shape[1] for t in names], dim=1)))
    valid_d = depth > 0
    log_d = torch.log(depth.clamp_min(1e-6))
    loss_depth = (up["depth"][:, 0] - log_d)[valid_d].abs().mean() if valid_d.any() else up["depth"].sum() * 0
    valid_n = normal.abs().sum(dim=1) > 0
    cos = (F.normalize(up["normal"], dim=1) * normal).sum(dim=1)  # ground truth is unit length
    loss_normal = (1 - cos)[valid_n].mean() if valid_n.any() else up["normal"].sum() * 0
    loss_contour = F.binary_cross_entropy_with_logits(
        up["contour"][:, 0], contour.float(), pos_weight=torch.tensor(contour_pos_weight, device=depth.device)
    )
    loss_seg = F.cross_entropy(up["segmentation"], category)
    return {"depth": loss_depth, "normal": loss_normal, "contour": loss_contour, "segmentation": loss_seg}
