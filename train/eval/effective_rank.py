"""Effective rank of a set of features: how many directions they really use.

erank(X) = exp(H(p)), p_i = lambda_i / sum_j lambda_j, with lambda the eigenvalues of the
covariance of the features X [N, D] (the squared singular values of X - mean(X)) and H the
Shannon entropy in nats (after Roy & Vetterli 2007, on the variance spectrum). It lies in
[1, min(N - 1, D)]: k orthogonal directions of equal variance give exactly k; features that
collapse onto a few directions give a small value. docs/quality.md uses it on pooled c5 of
Fashion-MNIST images to show the dimensional collapse of instance contrast.
"""

from __future__ import annotations

import torch

__all__ = ["effective_rank"]


def effective_rank(features: torch.Tensor, eps: float = 1e-12) -> float:
    """exp(entropy of the normalised covariance eigenvalues) of float [N, D] features (N >= 2), in float64."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"effective_rank: expected [N, D] features with N >= 2, got {tuple(features.shape)}")
    x = features.double()
    var = torch.linalg.svdvals(x - x.mean(0)).pow(2)
    if float(var.sum()) <= eps:
        return 1.0
    p = var / var.sum()
    p = p[p > eps]
    return float(torch.exp(-(p * p.log()).sum()))
