"""Feature decorrelation: the mean squared off-diagonal entry of a batch's channel correlations.

For features h [N, D] (N samples, D channels) the channels are standardised over the batch,
C = z^T z / N is their [D, D] correlation matrix, and the loss is
sum_{i != j} C_ij^2 / (D (D - 1)): 0 when no two channels are correlated over the batch,
1 when every channel is a copy of one (rank-1 features, complete dimensional collapse).
With N < D the batch spans at most N - 1 directions, so the floor is about 1 / (N - 1)
(every direction carrying equal variance); the term then spreads the batch's variance
over as many directions as it has. A channel that is constant over the batch (a dead
ReLU) standardises to 0 and counts as uncorrelated. Computed per rank on its local batch.

Used on the backbone's pooled c5 (the representation users get) against the dimensional
collapse that the contrastive term alone shows on out-of-domain images (docs/quality.md);
see Hua et al., "On Feature Decorrelation in Self-Supervised Learning", ICCV 2021.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["decorrelation_loss", "weighted_decorrelation"]


def decorrelation_loss(h: Tensor, eps: float = 1e-5) -> Tensor:
    """h: float [N, D] features, N >= 2, D >= 2 -> scalar in [0, 1] (float32, also under autocast)."""
    if h.ndim != 2 or h.shape[0] < 2 or h.shape[1] < 2:
        raise ValueError(f"decorrelation_loss: expected [N, D] features with N >= 2 and D >= 2, got {tuple(h.shape)}")
    n, d = h.shape
    with torch.autocast(device_type=h.device.type, enabled=False):
        x = h.float()
        x = x - x.mean(0)
        z = x / (x.pow(2).mean(0).sqrt() + eps)
        c = z.T @ z / n  # [D, D]
        off = c.pow(2).sum() - c.diagonal().pow(2).sum()
        return off / (d * (d - 1))


def weighted_decorrelation(
    rep: Tensor, real_rep: Optional[Tensor], weight: float, photo_weight: float
) -> tuple[dict[str, Tensor], Tensor]:
    """The decorrelation terms of a method: ``weight`` x the term on the synthetic views' representation
    ``rep`` [N, D] and ``photo_weight`` x the term on the photos' ``real_rep`` [Nr, D] (a weight of 0
    skips its term). Returns (logged terms ``decorrelation`` / ``photo_decorrelation``, weighted total)."""
    out: dict[str, Tensor] = {}
    total = rep.new_zeros((), dtype=torch.float32)
    if weight > 0:
        out["decorrelation"] = decorrelation_loss(rep)
        total = total + weight * out["decorrelation"]
    if photo_weight > 0:
        if real_rep is None:
            raise ValueError("weighted_decorrelation: photo_weight > 0 needs the photos' representation")
        out["photo_decorrelation"] = decorrelation_loss(real_rep)
        total = total + photo_weight * out["photo_decorrelation"]
    return out, total
