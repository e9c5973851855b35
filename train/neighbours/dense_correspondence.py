"""Exact geometric correspondences between the feature locations of two rendered views.

Only rendered data can offer this: every location of view 1 is lifted to 3-D with the
rendered depth, moved into camera 2, projected with view 2's intrinsics and tested for
occlusion against view 2's depth. Because the batch's intrinsics already include the
augmentation crop, resize and flip (a flip is folded into K: fx -> -fx), the result is
exact for the augmented views without knowing the augmentation.

Conventions (as the shard format): OpenCV camera frame (x right, y down, z forward);
depth = metric z-depth in metres, 0 = no surface; ``cam_to_world = [R t; 0 1]``;
pixel (u, v) centred at image point (u, v); a camera point X projects to
``(u, v, 1) * z = K @ X``. Feature locations are flattened row-major (see
`dense_neighbours`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from synthssl.train.neighbours.dense_neighbours import DenseNeighbours, location_centres, location_pixels
from synthssl.train.neighbours.reprojection import reproject_pixels, sample_pixels


@torch.no_grad()
def geometric_neighbours(
    depth1: Tensor,
    intrinsics1: Tensor,
    cam_to_world1: Tensor,
    depth2: Tensor,
    intrinsics2: Tensor,
    cam_to_world2: Tensor,
    feature_hw1: tuple[int, int],
    feature_hw2: tuple[int, int],
    radius: float = 0.5,
    occlusion_tol: float = 0.02,
    depth_tol: float = 0.05,
    normal1: Tensor | None = None,
    normal2: Tensor | None = None,
    flipped1: Tensor | None = None,
    flipped2: Tensor | None = None,
    normal_tol_deg: float = 45.0,
) -> DenseNeighbours:
    """Positives of view-1 locations among view-2 locations, from depth and cameras.

    depth1/depth2: float [B, H, W] metres (0 = no surface), at the (augmented) image
    resolution; intrinsics*: [B, 3, 3]; cam_to_world*: [B, 4, 4]; feature_hw*: (h, w) of
    the feature maps the locations belong to.

    Location i of view 1 is represented by the pixel nearest its centre, lifted to 3-D
    with that pixel's depth (locations without depth have no positive). The point is
    *visible* in view 2 when it projects inside the image, in front of the camera, and
    view 2's depth at the nearest pixel agrees with its z within ``occlusion_tol``
    (relative), i.e. it is not occluded. Location j of view 2 is a positive of a visible
    location i when
      - j's centre lies within ``radius`` x (view-2 location diagonal, pixels) of the
        projected point (default 0.5: the location containing the point and those whose
        centre is closer than ~0.7 location widths; PixPro's crop rule uses 0.7), and
      - the surface at j's centre pixel has a depth within ``depth_tol`` (relative) of
        the point's z in camera 2 (so a neighbour across an occlusion edge is not a
        positive).
      - when normals are given (normal*: [B, 3, H, W] unit normals in the camera frame,
        x negated on flipped views as `ViewBatch` stores them; flipped*: bool [B]), the
        normal at j's centre pixel is within ``normal_tol_deg`` of the point's normal
        rotated into camera 2 (so a neighbour across a crease, e.g. an object resting on
        the floor, is not a positive).
    The partner is the positive whose centre is nearest to the projected point.
    """
    if depth1.dim() != 3 or depth2.dim() != 3:
        raise ValueError(
            f"geometric_neighbours: depth must be [B, H, W], got {tuple(depth1.shape)} and {tuple(depth2.shape)}"
        )
    B = depth1.shape[0]
    for name, t, shape in (
        ("intrinsics1", intrinsics1, (B, 3, 3)),
        ("intrinsics2", intrinsics2, (B, 3, 3)),
        ("cam_to_world1", cam_to_world1, (B, 4, 4)),
        ("cam_to_world2", cam_to_world2, (B, 4, 4)),
    ):
        if tuple(t.shape) != shape:
            raise ValueError(f"geometric_neighbours: {name} must have shape {shape}, got {tuple(t.shape)}")
    device = depth1.device
    H1, W1 = depth1.shape[1:]
    H2, W2 = depth2.shape[1:]
    d64 = torch.float64

    # The view-1 locations' pixels, reprojected into view 2 and occlusion-tested at the
    # nearest view-2 pixel (the rule of dataset/geometry.py's reproject).
    pix1 = location_pixels((H1, W1), feature_hw1, device)  # [N1, 2]
    seen = reproject_pixels(pix1, depth1, intrinsics1, cam_to_world1, depth2, intrinsics2, cam_to_world2, occlusion_tol)
    uv2, z2, visible = seen.uv, seen.z, seen.visible  # [B, N1, 2], [B, N1], [B, N1]
    R1, R2 = cam_to_world1[:, :3, :3].to(d64), cam_to_world2[:, :3, :3].to(d64)

    # View-2 locations near the projected point, on the same surface.
    centres2 = location_centres((H2, W2), feature_hw2, device)  # [N2, 2]
    diag2 = ((H2 / feature_hw2[0]) ** 2 + (W2 / feature_hw2[1]) ** 2) ** 0.5
    dist = torch.cdist(uv2.nan_to_num(0.0), centres2[None].expand(B, -1, -1))  # [B, N1, N2]
    zc2 = sample_pixels(depth2, location_pixels((H2, W2), feature_hw2, device)).to(d64)  # [B, N2]
    same_surface = (zc2[:, None, :] > 0) & (
        (zc2[:, None, :] - z2[..., None]).abs() <= depth_tol * z2[..., None].clamp_min(1e-9)
    )
    mask = visible[..., None] & (dist <= radius * diag2) & same_surface
    if normal1 is not None and normal2 is not None:
        n1 = _camera_normals(normal1, flipped1, pix1)  # [B, N1, 3] camera 1
        n2 = _camera_normals(normal2, flipped2, location_pixels((H2, W2), feature_hw2, device))  # [B, N2, 3]
        n1_in_2 = n1 @ (R2.transpose(1, 2) @ R1).transpose(1, 2)  # rotate into camera 2
        cos = torch.einsum("bic,bjc->bij", n1_in_2, n2)
        mask = mask & (cos >= math.cos(math.radians(normal_tol_deg)))
    return DenseNeighbours.from_mask(mask, dist)


def _camera_normals(normal: Tensor, flipped: Tensor | None, pixels: Tensor) -> Tensor:
    """Normals [B, 3, H, W] (x negated on flipped views) at pixels [N, 2] (u, v) -> true
    camera-frame normals float64 [B, N, 3]."""
    B = normal.shape[0]
    n = normal[:, :, pixels[:, 1], pixels[:, 0]].to(torch.float64).transpose(1, 2)  # [B, N, 3]
    if flipped is not None:
        sign = torch.where(flipped.to(normal.device), -1.0, 1.0).to(torch.float64)
        n = torch.cat([n[..., :1] * sign.view(B, 1, 1), n[..., 1:]], dim=-1)
    return n
