"""Depth loss: L2 with a scale term on the mean residual (Eigen et al. 2014 form).

Per image, over valid pixels, with residual r (see below):
    L = mean(r^2) - scale_weight * mean(r)^2
scale_weight = 0 is plain L2; 1 ignores a global offset of r entirely; our default
0.5 (Eigen's choice). Ren & Lee (2018) use an L2 + scale term of this kind.

Residual space (``log_space``):
- True (our default): ``pred`` is log-depth (log metres) and r = pred - log(target);
  then the offset term makes the loss invariant to half the global scale, and the
  loss has the same magnitude for a table-top scene and a room.
- False: ``pred`` is depth in metres and r = pred - target.
Images without valid pixels contribute 0; the result is the mean over images that
have some.
"""

from __future__ import annotations

import torch
from torch import Tensor


def depth_loss(
    pred: Tensor, target: Tensor, valid: Tensor, scale_weight: float = 0.5, log_space: bool = True
) -> Tensor:
    """pred: [N,H,W] (log metres if log_space, else metres); target: [N,H,W] metres (0 = none);
    valid: bool [N,H,W] -> scalar."""
    if pred.shape != target.shape or valid.shape != target.shape:
        raise ValueError(
            f"depth_loss: shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
            f"valid {tuple(valid.shape)}"
        )
    valid = valid & (target > 0)
    m = valid.float()
    target = target.float()
    if log_space:
        target = torch.log(torch.where(valid, target, torch.ones_like(target)))
    r = (pred.float() - target) * m
    count = m.sum(dim=(1, 2))
    has = count > 0
    c = count.clamp_min(1.0)
    per_image = (r * r).sum(dim=(1, 2)) / c - scale_weight * (r.sum(dim=(1, 2)) / c) ** 2
    return (per_image * has).sum() / has.sum().clamp_min(1)
