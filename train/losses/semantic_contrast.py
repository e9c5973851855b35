"""Semantic level of DSC: same pseudo-class pixels of different images attract.

Given the online dense embeddings of both views and a pseudo-label per location
(from `pseudo_labels`), sample ``num_samples`` locations per image and view and apply
the supervised-contrastive loss across the global batch (`supcon_loss`). Similarities:
[M*S, world*M*S] for M = images x views on a rank, S = samples per map.
"""

from __future__ import annotations

import torch
from torch import Tensor

from synthssl.train.losses.pixel_contrast import sample_locations
from synthssl.train.losses.supcon import supcon_loss


def sampled_pixels(
    embeddings: Tensor, num_samples: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Sample locations of every map.

    embeddings: [M, D, N]. Returns (pixels [M*S, D], rows long [M*S]) where ``rows`` index
    the same locations in per-location tensors flattened as [M*N] (e.g. labels, codes);
    S = min(num_samples, N), all locations in order when num_samples >= N.
    """
    M, D, N = embeddings.shape
    index, _ = sample_locations(torch.ones(M, N, dtype=torch.bool, device=embeddings.device), num_samples, generator)
    pixels = torch.gather(embeddings, 2, index[:, None, :].expand(M, D, index.shape[1]))
    rows = index + N * torch.arange(M, device=embeddings.device)[:, None]
    return pixels.transpose(1, 2).reshape(-1, D), rows.reshape(-1)


def semantic_contrast_loss(
    embeddings: Tensor,
    labels: Tensor,
    num_samples: int = 8,
    temperature: float = 0.1,
    generator: torch.Generator | None = None,
    sampled: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Scalar supervised-contrastive loss over sampled pixels (DSC's L_sem).

    embeddings: float [M, D, N] online dense embeddings (M = images x views on this rank);
    labels: long [M, N] pseudo-classes (the same numbering on every rank).
    sampled: ``sampled_pixels(embeddings, num_samples)`` when the caller drew it already
    (DSC's prototype loss uses the same pixels); else drawn here with ``generator``.
    """
    M, _, N = embeddings.shape
    if labels.shape != (M, N):
        raise ValueError(f"semantic_contrast_loss: labels must be [{M}, {N}], got {tuple(labels.shape)}")
    pixels, rows = sampled if sampled is not None else sampled_pixels(embeddings, num_samples, generator)
    return supcon_loss(pixels, labels.reshape(-1)[rows], temperature)
