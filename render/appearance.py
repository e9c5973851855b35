"""Materials and lights, drawn from a NumPy Generator (no GL here).

World frame: z up, floor at z = 0. A light's ``pose`` is light-to-world (pyrender
convention: it shines along its local -z axis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import AppearanceConfig
from .textures import make_texture, random_color


@dataclass
class Material:
    """Surface appearance. ``texture`` uint8 [S,S,3] or None; ``uv_scale`` metres per texture tile."""

    base_color: np.ndarray
    roughness: float
    metallic: float
    texture: np.ndarray | None
    texture_kind: str
    uv_scale: float


@dataclass
class Light:
    """kind: 'directional' | 'point' | 'spot'; colour RGB in [0,1]; pose light-to-world 4x4."""

    kind: str
    color: np.ndarray
    intensity: float
    pose: np.ndarray


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = sorted(k for k, w in weights.items() if w > 0)
    p = np.array([weights[k] for k in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_material(rng: np.random.Generator, cfg: AppearanceConfig, uv_scale: float) -> Material:
    """Random base colour, texture kind, roughness and metallic."""
    kind = _choice(rng, cfg.texture_weights)
    texture = make_texture(kind, rng, cfg.texture_size, cfg.photo_dir)
    base = np.ones(3) if texture is not None else random_color(rng)
    return Material(
        base_color=base,
        roughness=float(rng.uniform(*cfg.roughness)),
        metallic=float(rng.uniform(*cfg.metallic)),
        texture=texture,
        texture_kind=kind,
        uv_scale=float(uv_scale),
    )


def look_at_pose(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 pose whose local -z axis points from ``eye`` to ``target`` (OpenGL/pyrender convention)."""
    back = np.asarray(eye, np.float64) - np.asarray(target, np.float64)
    back /= np.linalg.norm(back)
    up = np.array([0.0, 0.0, 1.0]) if abs(back[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, np.cross(back, right), back, eye
    return pose


def sample_lights(
    rng: np.random.Generator, cfg: AppearanceConfig, center: np.ndarray
) -> tuple[list[Light], np.ndarray]:
    """1-3 lights above the scene (random kind, direction, colour, intensity) and the ambient RGB."""
    lights = []
    for _ in range(int(rng.integers(cfg.lights[0], cfg.lights[1] + 1))):
        kind = ("directional", "point", "spot")[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
        az, el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(30, 85))
        dist = rng.uniform(1.5, 3.5)
        eye = center + dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        tint = 1.0 - rng.uniform(0, 0.35) * (1.0 - random_color(rng))  # mostly white, slightly tinted
        intensity = float(rng.uniform(*cfg.light_intensity))
        if kind != "directional":
            intensity *= 2.0 * dist**2  # pyrender point/spot intensities are candela-like
        lights.append(Light(kind, tint, intensity, look_at_pose(eye, center)))
    ambient = np.full(3, rng.uniform(*cfg.ambient))
    return lights, ambient


def jitter_lights(rng: np.random.Generator, lights: list[Light], amount: float) -> list[Light]:
    """Per-view copies of ``lights`` with intensities scaled by 1 + U(-amount, amount)."""
    if amount <= 0:
        return lights
    return [Light(l.kind, l.color, l.intensity * float(1 + rng.uniform(-amount, amount)), l.pose) for l in lights]


__all__ = ["Material", "Light", "sample_material", "sample_lights", "jitter_lights", "look_at_pose"]
