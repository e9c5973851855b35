"""Deterministic PCA projection (for embedding maps and dense-feature colourings)."""

from __future__ import annotations

import torch

__all__ = ["pca_fit", "pca_project"]


def pca_fit(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [D], components [k, D]) of float [N, D] data, computed in float64.

    The sign of each component is fixed so that its largest-magnitude entry is
    positive, making the result independent of the SVD implementation's sign choice.
    """
    x = x.double()
    mean = x.mean(0)
    _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
    comps = vh[:k]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    if comps.shape[0] < k:  # fewer samples/dims than k: pad with zero components
        comps = torch.cat([comps, comps.new_zeros(k - comps.shape[0], comps.shape[1])])
    return mean, comps


def pca_project(x: torch.Tensor, k: int = 2) -> torch.Tensor:
    """float64 [N, k] projection of [N, D] data onto its first k principal components."""
    mean, comps = pca_fit(x, k)
    return (x.double() - mean) @ comps.T
