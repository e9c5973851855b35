"""Feature-similarity neighbours (the DenseCL rule).

DenseCL (Wang et al., CVPR 2021) matches each location of view 1 to the location of
view 2 whose *backbone* feature is most similar (cosine); we allow the top-k.
The rule needs no geometry, so it works on any pair of views; early in training it
is noisy, which is why DenseCL warms its dense term up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from synthssl.train.neighbours.dense_neighbours import DenseNeighbours


@torch.no_grad()
def feature_neighbours(features1: Tensor, features2: Tensor, k: int = 1) -> DenseNeighbours:
    """Top-k cosine-similar view-2 locations of each view-1 location.

    features1: float [B, C, h1, w1]; features2: float [B, C, h2, w2] (detached
    backbone features; memory is B x N1 x N2 similarities, computed without grad).
    The partner is the most similar location (top-1).
    """
    if features1.dim() != 4 or features2.dim() != 4 or features1.shape[:2] != features2.shape[:2]:
        raise ValueError(
            f"feature_neighbours: features must be [B, C, h, w] with equal B and C, got "
            f"{tuple(features1.shape)} and {tuple(features2.shape)}"
        )
    f1 = F.normalize(features1.flatten(2).float(), dim=1)  # [B, C, N1]
    f2 = F.normalize(features2.flatten(2).float(), dim=1)  # [B, C, N2]
    n2 = f2.shape[2]
    if not 1 <= k <= n2:
        raise ValueError(f"feature_neighbours: k must be in [1, {n2}] (locations of view 2), got {k}")
    with torch.autocast(f1.device.type, enabled=False):
        sim = torch.bmm(f1.transpose(1, 2), f2)  # [B, N1, N2]
    top = sim.topk(k, dim=2).indices
    mask = torch.zeros_like(sim, dtype=torch.bool).scatter_(2, top, True)
    return DenseNeighbours(mask=mask, partner=top[..., 0])
