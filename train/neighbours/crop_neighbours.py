"""Crop-geometry neighbours (the PixPro rule) for views that share no 3-D geometry.

Two augmented views of one photo are crops (optionally flipped) of the same original
image. A feature location of each view is mapped back to the original image; location
j of view 2 is a positive of location i of view 1 when their centres there are closer
than ``radius`` x the larger of the two views' location diagonals (measured in
original-image pixels). PixPro (Xie et al., CVPR 2021) uses radius 0.7.

Crop boxes follow `ViewBatch`: (x0, y0, x1, y1) in the original image's pixel-edge
coordinates (the full image is (0, 0, W0, H0)), before resize; a flipped view
mirrors its crop horizontally.
"""

from __future__ import annotations

import torch
from torch import Tensor

from synthssl.train.neighbours.dense_neighbours import DenseNeighbours


def original_image_centres(crop_boxes: Tensor, flipped: Tensor, feature_hw: tuple[int, int]) -> Tensor:
    """Centres of the feature locations in original-image pixel-edge coordinates.

    crop_boxes: float [B, 4]; flipped: bool [B]; returns float64 [B, h*w, 2] as (x, y),
    row-major over the feature map.
    """
    h, w = feature_hw
    device = crop_boxes.device
    fy = (torch.arange(h, dtype=torch.float64, device=device) + 0.5) / h  # [h] in (0, 1)
    fx = (torch.arange(w, dtype=torch.float64, device=device) + 0.5) / w  # [w]
    fx = torch.where(flipped.to(device)[:, None], 1.0 - fx[None], fx[None])  # [B, w]
    box = crop_boxes.to(torch.float64)
    x = box[:, None, 0] + fx * (box[:, None, 2] - box[:, None, 0])  # [B, w]
    y = box[:, None, 1] + fy[None] * (box[:, None, 3] - box[:, None, 1])  # [B, h]
    B = box.shape[0]
    xs = x[:, None, :].expand(B, h, w)
    ys = y[:, :, None].expand(B, h, w)
    return torch.stack([xs, ys], dim=-1).reshape(B, h * w, 2)


def location_diagonal(crop_boxes: Tensor, feature_hw: tuple[int, int]) -> Tensor:
    """Diagonal of one feature location in original-image pixels, float64 [B]."""
    box = crop_boxes.to(torch.float64)
    return torch.hypot((box[:, 2] - box[:, 0]) / feature_hw[1], (box[:, 3] - box[:, 1]) / feature_hw[0])


@torch.no_grad()
def crop_neighbours(
    crop_boxes1: Tensor,
    flipped1: Tensor,
    crop_boxes2: Tensor,
    flipped2: Tensor,
    feature_hw1: tuple[int, int],
    feature_hw2: tuple[int, int],
    radius: float = 0.7,
) -> DenseNeighbours:
    """Positives from crop geometry: centres closer than radius x max location diagonal.

    crop_boxes*: float [B, 4] (x0, y0, x1, y1); flipped*: bool [B]; feature_hw*: (h, w).
    The partner of a location is the positive with the nearest centre.
    """
    for name, t in (("crop_boxes1", crop_boxes1), ("crop_boxes2", crop_boxes2)):
        if t.dim() != 2 or t.shape[1] != 4:
            raise ValueError(f"crop_neighbours: {name} must be [B, 4] (x0, y0, x1, y1), got {tuple(t.shape)}")
        if bool(((t[:, 2] <= t[:, 0]) | (t[:, 3] <= t[:, 1])).any()):
            raise ValueError(f"crop_neighbours: {name} has an empty box (x1 <= x0 or y1 <= y0)")
    c1 = original_image_centres(crop_boxes1, flipped1, feature_hw1)
    c2 = original_image_centres(crop_boxes2, flipped2, feature_hw2)
    dist = torch.cdist(c1, c2)  # [B, N1, N2]
    limit = radius * torch.maximum(
        location_diagonal(crop_boxes1, feature_hw1), location_diagonal(crop_boxes2, feature_hw2)
    )
    return DenseNeighbours.from_mask(dist <= limit[:, None, None], dist)
