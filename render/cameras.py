"""View sampling in the shard's OpenCV convention.

Camera frame: x right, y down, z forward (optical axis). ``cam_to_world`` = [R t; 0 1]
maps camera to world coordinates (world z up). Intrinsics K put pixel centres at
integer coordinates: pixel (row v, col u) is centred at (u, v); the principal point
of a centred camera is ((W-1)/2, (H-1)/2).

View 0 looks at the objects' centre (+ jitter) from a random azimuth, elevation and
distance; view v >= 1 is drawn at a controlled offset from view 0 (azimuth,
elevation, distance ratio, own roll, look-at jitter, focal length).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import CameraConfig

#: Multiply an OpenCV cam_to_world on the right to get the OpenGL (x right, y up, z back) one.
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass
class Orbit:
    """Spherical camera placement around ``target`` (degrees, metres)."""

    azimuth: float
    elevation: float
    distance: float
    target: np.ndarray
    roll: float
    fov: float


@dataclass
class CameraView:
    """One view: K [3,3] and cam_to_world [4,4] (OpenCV), image size in pixels."""

    K: np.ndarray
    cam_to_world: np.ndarray
    height: int
    width: int


def intrinsics(fov_deg: float, height: int, width: int) -> np.ndarray:
    """Pinhole K for horizontal field of view ``fov_deg``; square pixels; centred principal point."""
    f = (width / 2.0) / np.tan(np.deg2rad(fov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """OpenCV cam_to_world of a camera at ``eye`` looking at ``target`` (world z up), rolled about z."""
    z = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
    z /= np.linalg.norm(z)
    up = np.array([0.0, 0.0, 1.0])
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-8:  # looking straight down/up: any horizontal x
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.deg2rad(roll_deg)
    c, s = np.cos(r), np.sin(r)
    x, y = c * x + s * y, -s * x + c * y
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def orbit_view(o: Orbit, height: int, width: int) -> CameraView:
    az, el = np.deg2rad(o.azimuth), np.deg2rad(o.elevation)
    eye = o.target + o.distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return CameraView(intrinsics(o.fov, height, width), look_at(eye, o.target, o.roll), height, width)


def sample_base_orbit(rng: np.random.Generator, cfg: CameraConfig, center: np.ndarray) -> Orbit:
    """View 0: random azimuth, elevation, distance, roll and field of view around ``center``."""
    target = np.asarray(center, np.float64) + rng.normal(0, cfg.look_at_jitter, 3) * np.array([1, 1, 0.5])
    return Orbit(
        azimuth=float(rng.uniform(0, 360)),
        elevation=float(rng.uniform(*cfg.elevation)),
        distance=float(rng.uniform(*cfg.distance)),
        target=target,
        roll=float(rng.uniform(*cfg.roll)),
        fov=float(rng.uniform(*cfg.fov)),
    )


def sample_offset_orbit(rng: np.random.Generator, cfg: CameraConfig, base: Orbit, center: np.ndarray) -> Orbit:
    """View v: an offset from view 0 (azimuth +-[lo,hi], elevation, distance ratio) with its own jitter, roll, fov."""
    sign = 1.0 if rng.uniform() < 0.5 else -1.0
    az = base.azimuth + sign * rng.uniform(*cfg.azimuth_offset)
    el = float(np.clip(base.elevation + rng.uniform(*cfg.elevation_offset), cfg.min_elevation, cfg.max_elevation))
    target = np.asarray(center, np.float64) + rng.normal(0, cfg.look_at_jitter, 3) * np.array([1, 1, 0.5])
    return Orbit(
        azimuth=float(az),
        elevation=el,
        distance=float(base.distance * rng.uniform(*cfg.distance_ratio)),
        target=target,
        roll=float(rng.uniform(*cfg.roll)),
        fov=float(rng.uniform(*cfg.fov)),
    )


def overlap_distance(value: float, lo: float, hi: float) -> float:
    """0 inside [lo, hi], else the distance to the interval (used to keep the best re-sample)."""
    return max(lo - value, 0.0, value - hi)


__all__ = [
    "Orbit",
    "CameraView",
    "CV_TO_GL",
    "intrinsics",
    "look_at",
    "orbit_view",
    "sample_base_orbit",
    "sample_offset_orbit",
    "overlap_distance",
]
