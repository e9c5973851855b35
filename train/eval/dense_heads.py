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

__all__ = ["TASK_CHANNELS", "DenseHeads", "dense_probe_losses", "task_loss"]

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


def task_loss(task: str, logits: torch.Tensor, target: torch.Tensor, contour_pos_weight: float = 1.0) -> torch.Tensor:
    """The probe loss of one task on full-resolution ``logits`` (a head's output, already upsampled to the
    target's size). depth: logits [N, 1, H, W] log metres, target [N, H, W] metres (0 invalid): L1 on log
    depth over valid pixels; normal: logits [N, 3, H, W], target [N, 3, H, W] unit (0 invalid): mean
    (1 - cos) over valid pixels; contour: logits [N, 1, H, W], target [N, H, W] {0, 1}: BCE with logits,
    positives weighted by ``contour_pos_weight``; segmentation: logits [N, K, H, W], target [N, H, W] long:
    cross-entropy. A task without valid pixels gives a zero that still carries the graph."""
    if task == "depth":
        valid = (target > 0).float()  # masked sums, not boolean indexing: the same mean, faster on a CPU
        count = valid.sum()
        log_d = torch.log(target.clamp_min(1e-6))
        return ((logits[:, 0] - log_d).abs() * valid).sum() / count if count > 0 else logits.sum() * 0
    if task == "normal":
        valid = (target.abs().sum(dim=1) > 0).float()
        count = valid.sum()
        # F.normalize's arithmetic (x / max(|x|, 1e-12)), written out: several times faster on a CPU
        unit = logits / logits.pow(2).sum(dim=1, keepdim=True).sqrt().clamp_min(1e-12)
        cos = (unit * target).sum(dim=1)  # ground truth is unit length
        return ((1 - cos) * valid).sum() / count if count > 0 else logits.sum() * 0
    if task == "contour":
        weight = torch.tensor(contour_pos_weight, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits[:, 0], target.float(), pos_weight=weight)
    if task == "segmentation":
        return F.cross_entropy(logits, target)
    raise ValueError(f"dense probes: unknown task {task!r}; expected depth, normal, contour or segmentation")


def dense_probe_losses(
    outputs: dict[str, torch.Tensor],
    depth: torch.Tensor,
    normal: torch.Tensor,
    contour: torch.Tensor,
    category: torch.Tensor,
    contour_pos_weight: float,
) -> dict[str, torch.Tensor]:
    """Per-task losses (`task_loss`) at full resolution (outputs are bilinearly upsampled first).

    depth [N, H, W] metres (0 invalid); normal [N, 3, H, W] (0 invalid); contour [N, H, W] {0, 1};
    category [N, H, W] long.
    """
    names = list(outputs)
    stacked = F.interpolate(
        torch.cat([outputs[t] for t in names], dim=1), size=depth.shape[-2:], mode="bilinear", align_corners=False
    )
    up = dict(zip(names, stacked.split([outputs[t].shape[1] for t in names], dim=1)))
    targets = {"depth": depth, "normal": normal, "contour": contour, "segmentation": category}
    return {
        t: task_loss(t, up[t], targets[t], contour_pos_weight) for t in ("depth", "normal", "contour", "segmentation")
    }
