"""Pinhole geometry on depth maps (NumPy, no torch).

Conventions (see ``schema``): OpenCV camera frame (x right, y down, z forward),
pixel (row v, column u) centred at image point (u, v), ``depth`` = metric
z-depth (metres, 0 = no surface), ``cam_to_world`` = [R t; 0 1] with
``X_world = R @ X_cam + t``.
"""

from __future__ import annotations

import numpy as np


def pixel_grid(height: int, width: int) -> np.ndarray:
    """Pixel-centre coordinates, float64 [H, W, 2] holding (u, v) = (column, row)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([u, v], axis=-1)


def unproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Lift every pixel to the camera frame.

    depth: [H, W] metres (z along the optical axis). K: [3, 3].
    Returns float64 [H, W, 3] camera-frame points; pixels with depth 0 map to the origin.
    """
    h, w = depth.shape
    uv = pixel_grid(h, w)
    K = np.asarray(K, dtype=np.float64)
    z = np.asarray(depth, dtype=np.float64)
    # Solve K @ [x/z, y/z, 1] = [u, v, 1] for a general (possibly skewed, negative-fx) K.
    rays = np.concatenate([uv, np.ones((h, w, 1))], axis=-1) @ np.linalg.inv(K).T
    return rays / rays[..., 2:3] * z[..., None]


def transform(points: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to points [..., 3]."""
    T = np.asarray(T, dtype=np.float64)
    return points @ T[:3, :3].T + T[:3, 3]


def project(points_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points [..., 3] with K [3, 3].

    Returns (uv [..., 2] pixel coordinates (column, row), z [...] depth). Points with
    z <= 0 get uv = nan.
    """
    K = np.asarray(K, dtype=np.float64)
    p = points_cam @ K.T
    z = points_cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = p[..., :2] / p[..., 2:3]
    uv[z <= 0] = np.nan
    return uv, z


def relative_transform(cam_to_world_a: np.ndarray, cam_to_world_b: np.ndarray) -> np.ndarray:
    """4x4 transform taking camera-a coordinates to camera-b coordinates."""
    return np.linalg.inv(np.asarray(cam_to_world_b, np.float64)) @ np.asarray(cam_to_world_a, np.float64)


def reproject(
    depth_a: np.ndarray,
    K_a: np.ndarray,
    cam_to_world_a: np.ndarray,
    depth_b: np.ndarray,
    K_b: np.ndarray,
    cam_to_world_b: np.ndarray,
    rel_tol: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """Where each view-a pixel lands in view b, and whether it is seen there.

    A view-a pixel with depth > 0 is lifted to 3-D, moved into camera b and projected.
    It is *visible* when it lands inside view b (nearest pixel centre), in front of
    the camera, and view b's depth at that pixel agrees with the point's z-depth in
    camera b within ``rel_tol`` (relative), i.e. the point is not occluded there.

    Returns (uv_b float64 [H, W, 2] (column, row; nan where depth_a is 0 or behind
    camera b), visible bool [H, W]).
    """
    za = np.asarray(depth_a, np.float64)
    zb_map = np.asarray(depth_b, np.float64)
    h, w = za.shape
    hb, wb = zb_map.shape
    u = np.arange(w, dtype=np.float64)[None, :]
    v = np.arange(h, dtype=np.float64)[:, None]
    # the rays of `unproject` through each pixel, one coordinate at a time: [H, W] arrays only
    Ki = np.linalg.inv(np.asarray(K_a, np.float64))
    rz = Ki[2, 0] * u + Ki[2, 1] * v + Ki[2, 2]
    scale = za / rz
    xa = (Ki[0, 0] * u + Ki[0, 1] * v + Ki[0, 2]) * scale
    ya = (Ki[1, 0] * u + Ki[1, 1] * v + Ki[1, 2]) * scale
    za_ray = rz * scale
    T = relative_transform(cam_to_world_a, cam_to_world_b)
    Kb = np.asarray(K_b, np.float64)
    # camera-b points, then K_b applied: p = K_b @ (R @ x_a + t)
    cb = [T[i, 0] * xa + T[i, 1] * ya + T[i, 2] * za_ray + T[i, 3] for i in range(3)]
    z_b = cb[2]
    px, py, pz = (Kb[i, 0] * cb[0] + Kb[i, 1] * cb[1] + Kb[i, 2] * cb[2] for i in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        uv_b = np.stack([px / pz, py / pz], axis=-1)
    uv_b[(z_b <= 0) | (za <= 0)] = np.nan
    with np.errstate(invalid="ignore"):
        ui = np.rint(uv_b[..., 0])
        vi = np.rint(uv_b[..., 1])
        inside = (ui >= 0) & (ui < wb) & (vi >= 0) & (vi < hb) & (z_b > 0)
    at = np.where(inside, vi * wb + ui, 0).astype(np.int64)  # the nearest view-b pixel, row-major
    d_b = zb_map.reshape(-1)[at]
    visible = inside & (d_b > 0) & (np.abs(d_b - z_b) <= rel_tol * np.maximum(z_b, 1e-9))
    return uv_b, visible


def nearest_pixel(uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer (row, col) of the pixel whose centre is nearest to uv [..., 2]; nan -> 0."""
    uv = np.nan_to_num(uv, nan=0.0)
    return np.rint(uv[..., 1]).astype(np.int64), np.rint(uv[..., 0]).astype(np.int64)


def overlap(
    depth_a: np.ndarray,
    K_a: np.ndarray,
    cam_to_world_a: np.ndarray,
    depth_b: np.ndarray,
    K_b: np.ndarray,
    cam_to_world_b: np.ndarray,
    rel_tol: float = 0.02,
) -> float:
    """Fraction of view-a surface pixels (depth > 0) that are visible on the same surface in view b."""
    surface = np.asarray(depth_a) > 0
    n = int(surface.sum())
    if n == 0:
        return 0.0
    _, visible = reproject(depth_a, K_a, cam_to_world_a, depth_b, K_b, cam_to_world_b, rel_tol)
    return float(visible.sum()) / n
