"""`DenseNeighbours`: which feature locations of view 2 are positives of each location of view 1.

Every neighbour rule of the pixel level (geometric correspondences, crop geometry,
feature similarity) returns this record; `pixel_contrast` consumes it.

Conventions
-----------
A feature map of h x w locations over an H x W image is flattened row-major:
location ``n = row * w + col``. Location (row, col) covers the image rectangle
``[col * W/w, (col+1) * W/w) x [row * H/h, (row+1) * H/h)`` in pixel-edge coordinates;
its centre in pixel-centre coordinates (pixel (u, v) centred at (u, v), as the shard
format and the intrinsics use) is ``((col + 0.5) * W/w - 0.5, (row + 0.5) * H/h - 0.5)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class DenseNeighbours:
    """Positives between the locations of two views of each sample.

    mask: bool [B, N1, N2]; ``mask[b, i, j]`` = location j of view 2 is a positive of
        location i of view 1 (the relation is used in both directions).
    partner: long [B, N1]; the best positive of location i (nearest / most similar), or
        -1 when location i has no positive. ``mask[b, i, partner[b, i]]`` is True.
    """

    mask: Tensor
    partner: Tensor

    def __post_init__(self) -> None:
        if self.mask.dtype != torch.bool or self.mask.dim() != 3:
            raise ValueError(
                f"DenseNeighbours.mask: expected bool [B, N1, N2], got {self.mask.dtype} {tuple(self.mask.shape)}"
            )
        if self.partner.shape != self.mask.shape[:2]:
            raise ValueError(
                f"DenseNeighbours.partner: expected shape {tuple(self.mask.shape[:2])}, got {tuple(self.partner.shape)}"
            )

    @property
    def has_partner(self) -> Tensor:
        """bool [B, N1]: location i of view 1 has at least one positive."""
        return self.partner >= 0

    @staticmethod
    def from_mask(mask: Tensor, cost: Tensor) -> "DenseNeighbours":
        """Neighbours whose partner is the positive of least `cost` ([B, N1, N2], lower = better)."""
        masked = cost.masked_fill(~mask, float("inf"))
        best = masked.argmin(dim=2)
        partner = torch.where(mask.any(dim=2), best, torch.full_like(best, -1))
        return DenseNeighbours(mask=mask, partner=partner)


def location_centres(
    image_hw: tuple[int, int], feature_hw: tuple[int, int], device: torch.device | str | None = None
) -> Tensor:
    """Centres of the feature locations in pixel-centre image coordinates.

    Returns float64 [h*w, 2] holding (u, v) = (column, row) positions, row-major.
    """
    H, W = image_hw
    h, w = feature_hw
    if h <= 0 or w <= 0 or H < h or W < w:
        raise ValueError(
            f"location_centres: feature map {feature_hw} must be non-empty and no larger than the image {image_hw}"
        )
    rows = (torch.arange(h, dtype=torch.float64, device=device) + 0.5) * (H / h) - 0.5
    cols = (torch.arange(w, dtype=torch.float64, device=device) + 0.5) * (W / w) - 0.5
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)


def location_pixels(
    image_hw: tuple[int, int], feature_hw: tuple[int, int], device: torch.device | str | None = None
) -> Tensor:
    """The image pixel nearest to each location centre: long [h*w, 2] as (u, v).

    Ties (even strides put the centre between pixels) round up, consistently.
    """
    H, W = image_hw
    centres = location_centres(image_hw, feature_hw, device)
    pix = torch.floor(centres + 0.5).long()
    pix[:, 0].clamp_(0, W - 1)
    pix[:, 1].clamp_(0, H - 1)
    return pix
