"""Reprojection of view-a pixels into view b in torch: `synthssl.dataset.geometry.reproject` for batches.

The same rule as the NumPy reference (tests/dsc/test_dsc_neighbours.py proves equality
on the same inputs): a pixel with depth > 0 is lifted to 3-D with view a's depth and
intrinsics, moved into camera b and projected with view b's intrinsics. It is *visible*
in view b when its nearest pixel (``torch.round``, half to even, exactly as ``np.rint``)
lies inside view b, it is in front of camera b (z > 0), and view b's depth at that pixel
agrees with its z-depth within ``rel_tol`` (relative), i.e. it is not occluded.

Conventions (as the shard format): OpenCV camera frame (x right, y down, z forward);
depth = metric z-depth in metres, 0 = no surface; ``cam_to_world = [R t; 0 1]``;
pixel (u, v) centred at image point (u, v). All arithmetic is float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Reprojection:
    """Where view-a pixels land in view b (B samples, N pixels each).

    uv: float64 [B, N, 2] (column, row) in view b; nan where view a has no depth or the
        point is behind camera b.
    z: float64 [B, N] z-depth in camera b; z_a: float64 [B, N] view a's depth at the pixels.
    nearest: long [B, N, 2] (u, v) of view b's pixel nearest to ``uv`` (0 where not inside).
    inside: bool [B, N] nearest pixel inside view b and in front of the camera.
    visible: bool [B, N] inside and not occluded (see the module docstring).
    """

    uv: Tensor
    z: Tensor
    z_a: Tensor
    nearest: Tensor
    inside: Tensor
    visible: Tensor


def sample_pixels(image: Tensor, pixels: Tensor) -> Tensor:
    """image [B, H, W] at pixels long [N, 2] (shared) or [B, N, 2] (per sample), as (u, v) -> [B, N]."""
    B, H, W = image.shape
    flat = image.reshape(B, H * W)
    idx = pixels[..., 1] * W + pixels[..., 0]
    if idx.dim() == 1:
        return flat[:, idx]
    return torch.gather(flat, 1, idx.reshape(B, -1)).reshape(idx.shape)


def nearest_pixel(uv: Tensor) -> Tensor:
    """Integer-valued (u, v) of the pixel whose centre is nearest to ``uv`` [..., 2]: ``torch.round``
    (half to even, the rule of ``np.rint`` in `synthssl.dataset.geometry`); dtype kept."""
    return torch.round(uv)


def reproject_pixels(
    pixels: Tensor,
    depth_a: Tensor,
    intrinsics_a: Tensor,
    cam_to_world_a: Tensor,
    depth_b: Tensor,
    intrinsics_b: Tensor,
    cam_to_world_b: Tensor,
    rel_tol: float = 0.02,
) -> Reprojection:
    """Reproject the view-a pixels ``pixels`` (long [N, 2] as (u, v), shared by the batch) into view b.

    depth_a/depth_b: float [B, H, W] metres; intrinsics_*: [B, 3, 3]; cam_to_world_*: [B, 4, 4].
    """
    d64 = torch.float64
    z_a = sample_pixels(depth_a, pixels).to(d64)  # [B, N]
    homog = torch.cat([pixels.to(d64), torch.ones_like(pixels[:, :1], dtype=d64)], dim=1)  # [N, 3]
    K_a_inv = torch.linalg.inv_ex(intrinsics_a.to(d64)).inverse  # no host sync
    rays = torch.einsum("bij,nj->bni", K_a_inv, homog)  # [B, N, 3]
    points_a = rays / rays[..., 2:3] * z_a[..., None]
    # camera a -> camera b: inv(cam_to_world_b) @ cam_to_world_a, a general inverse as in
    # geometry.relative_transform (float32 poses are orthonormal only to ~1e-7).
    a_to_b = torch.linalg.inv_ex(cam_to_world_b.to(d64)).inverse @ cam_to_world_a.to(d64)
    points_b = points_a @ a_to_b[:, :3, :3].transpose(1, 2) + a_to_b[:, None, :3, 3]
    z = points_b[..., 2]
    proj = points_b @ intrinsics_b.to(d64).transpose(1, 2)
    uv = proj[..., :2] / proj[..., 2:3]
    uv = torch.where(((z_a > 0) & (z > 0))[..., None], uv, torch.full_like(uv, float("nan")))
    H_b, W_b = depth_b.shape[1:]
    near = nearest_pixel(uv)
    inside = (
        (z_a > 0)
        & (z > 0)
        & (near[..., 0] >= 0)
        & (near[..., 0] <= W_b - 1)
        & (near[..., 1] >= 0)
        & (near[..., 1] <= H_b - 1)
    )
    near = torch.where(inside[..., None], near, torch.zeros_like(near)).long()
    d_at = sample_pixels(depth_b, near).to(d64)
    visible = inside & (d_at > 0) & ((d_at - z).abs() <= rel_tol * z.clamp_min(1e-9))
    return Reprojection(uv=uv, z=z, z_a=z_a, nearest=near, inside=inside, visible=visible)
