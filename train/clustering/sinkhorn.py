"""Sinkhorn-Knopp equipartition of soft assignments to prototypes (SwAV).

Given scores [N, K] (cosine similarity of N embeddings to K prototypes), find codes
Q [N, K] close to softmax(scores / eps) whose clusters are equally used: each row sums
to 1 and each column to N / K. SwAV (Caron et al., NeurIPS 2020) uses eps = 0.05 and
3 iterations. Run it on the *gathered* scores so that every rank balances the global
batch and computes identical codes.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def sinkhorn(scores: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    """Balanced codes float32 [N, K] (rows sum to 1) from scores [N, K]."""
    if scores.dim() != 2:
        raise ValueError(f"sinkhorn: scores must be [N, K], got {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"sinkhorn: need epsilon > 0 and iterations >= 1, got {epsilon}, {iterations}")
    s = scores.float() / epsilon
    q = torch.exp(s - s.max()).t()  # [K, N]
    n, k = q.shape[1], q.shape[0]
    q = q / q.sum()
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True).clamp_min(1e-30) / k  # prototypes: 1/K each
        q = q / q.sum(dim=0, keepdim=True).clamp_min(1e-30) / n  # samples: 1/N each
    return (q * n).t()
