"""Contour loss: binary cross-entropy with logits, edges re-weighted per image.

Per image, over valid pixels: pos_weight = (#pixels - #edge) / #edge (1 when an image
has no edge pixel), BCE averaged over the image's valid pixels; then the mean over
images with valid pixels (Ren & Lee 2018's class balancing; edges are rare).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def contour_loss(logits: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """logits, target ({0,1}): [N,H,W]; valid: bool [N,H,W] -> scalar."""
    if logits.shape != target.shape or valid.shape != target.shape:
        raise ValueError(
            f"contour_loss: shapes differ: logits {tuple(logits.shape)}, "
            f"target {tuple(target.shape)}, valid {tuple(valid.shape)}"
        )
    m = valid.float()
    t = target.float() * m
    pixels = m.sum(dim=(1, 2))
    edges = t.sum(dim=(1, 2))
    pos_weight = torch.where(edges > 0, (pixels - edges) / edges.clamp_min(1.0), torch.ones_like(edges))
    bce = F.binary_cross_entropy_with_logits(logits.float(), t, reduction="none")
    # Positives weighted by their image's pos_weight (what BCE's pos_weight argument does).
    weight = 1.0 + (pos_weight.view(-1, 1, 1) - 1.0) * t
    per_image = (bce * weight * m).sum(dim=(1, 2)) / pixels.clamp_min(1.0)
    has = pixels > 0
    return (per_image * has).sum() / has.sum().clamp_min(1)
