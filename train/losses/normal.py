"""Surface-normal loss: mean(1 - cos(n_pred, n_gt)) over valid pixels.

Averaged per image over its valid pixels, then over the images that have some
(every image weighs the same, so the per-rank means average to the global mean).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def normal_loss(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """pred, target: [N,3,H,W] (normalised here); valid: bool [N,H,W] -> scalar in [0, 2]."""
    if pred.shape != target.shape or valid.shape != (target.shape[0], *target.shape[2:]):
        raise ValueError(
            f"normal_loss: shapes pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
            f"valid {tuple(valid.shape)} do not match"
        )
    cos = (F.normalize(pred.float(), dim=1, eps=1e-6) * F.normalize(target.float(), dim=1, eps=1e-6)).sum(1)
    m = valid.float()
    count = m.sum(dim=(1, 2))
    per_image = ((1.0 - cos) * m).sum(dim=(1, 2)) / count.clamp_min(1.0)
    has = count > 0
    return (per_image * has).sum() / has.sum().clamp_min(1)
