"""Momentum (EMA) encoders, as in MoCo / BYOL.

A momentum copy of a module is a frozen deep copy whose parameters follow the online
module: ``target = m * target + (1 - m) * online`` after every optimiser step (buffers,
e.g. BatchNorm statistics, are copied). `momentum_schedule` optionally raises m from its
base value to 1 with a cosine (BYOL); MoCo v2 keeps it constant (0.999).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy of `module` (no gradients) to be updated with `ema_update`."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online; buffers copied.

    Both modules must have the same structure (as made by `momentum_copy`).
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"ema_update: momentum must be in [0, 1], got {momentum}")
    online_params = list(online.parameters())
    target_params = list(target.parameters())
    if len(online_params) != len(target_params):
        raise ValueError("ema_update: online and target modules have different parameters")
    for p_target, p_online in zip(target_params, online_params):
        p_target.lerp_(p_online.detach(), 1.0 - momentum)
    for b_online, b_target in zip(online.buffers(), target.buffers()):
        b_target.copy_(b_online)


def momentum_schedule(base: float, progress: float, cosine: bool = False) -> float:
    """Momentum at training progress p in [0, 1]: constant `base`, or the BYOL cosine
    ramp 1 - (1 - base) * (cos(pi p) + 1) / 2 from `base` to 1."""
    if not cosine:
        return base
    return 1.0 - (1.0 - base) * (math.cos(math.pi * min(max(progress, 0.0), 1.0)) + 1.0) / 2.0
