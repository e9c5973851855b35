"""Shape generators: trimesh primitives and random procedural shapes.

Every generator takes a NumPy ``Generator`` and returns a watertight-ish
``trimesh.Trimesh`` of roughly unit extent (largest side ~1, centred on its
bounding box centre); the caller applies the random non-uniform scale. The shape
family name is the object's category.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import trimesh
from scipy.spatial import ConvexHull


def _unit(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A new mesh centred on the bounding-box centre with its largest extent scaled to 1."""
    v = np.asarray(mesh.vertices, np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    return trimesh.Trimesh((v - (lo + hi) / 2) / max(float(np.max(hi - lo)), 1e-9), mesh.faces, process=False)


@functools.lru_cache(maxsize=None)
def _fixed(name: str) -> trimesh.Trimesh:
    """Parameter-free primitives are built once per process (callers never modify them)."""
    make = {"box": lambda: trimesh.creation.box(extents=(1.0, 1.0, 1.0)),
            "sphere": lambda: trimesh.creation.icosphere(subdivisions=2),
            "cylinder": lambda: trimesh.creation.cylinder(radius=0.5, height=1.0, sections=24),
            "cone": lambda: trimesh.creation.cone(radius=0.5, height=1.0, sections=24)}[name]
    return _unit(make())


def box(rng: np.random.Generator) -> trimesh.Trimesh:
    return _fixed("box")


def sphere(rng: np.random.Generator) -> trimesh.Trimesh:
    return _fixed("sphere")


def cylinder(rng: np.random.Generator) -> trimesh.Trimesh:
    return _fixed("cylinder")


def capsule(rng: np.random.Generator) -> trimesh.Trimesh:
    return _unit(trimesh.creation.capsule(height=rng.uniform(0.5, 1.5), radius=0.5, count=(12, 12)))


def cone(rng: np.random.Generator) -> trimesh.Trimesh:
    return _fixed("cone")


def torus(rng: np.random.Generator) -> trimesh.Trimesh:
    minor = rng.uniform(0.12, 0.3)
    return _unit(trimesh.creation.torus(major_radius=0.5, minor_radius=minor, major_sections=24, minor_sections=10))


def hull(rng: np.random.Generator) -> trimesh.Trimesh:
    """Convex hull of 8-24 random points (faces oriented outwards)."""
    for _ in range(10):
        pts = rng.uniform(-0.5, 0.5, size=(int(rng.integers(8, 25)), 3))
        try:
            ch = ConvexHull(pts)
        except Exception:  # degenerate draw (coplanar points); try again
            continue
        faces = ch.simplices.copy()
        centre = pts[ch.vertices].mean(axis=0)
        v0, v1, v2 = (pts[faces[:, k]] for k in range(3))
        inward = np.einsum("ij,ij->i", np.cross(v1 - v0, v2 - v0), v0 - centre) < 0
        faces[inward] = faces[inward][:, ::-1]  # orient every face outwards
        return _unit(trimesh.Trimesh(pts, faces, process=True))
    return box(rng)


def extrusion(rng: np.random.Generator) -> trimesh.Trimesh:
    """A random star-shaped polygon (5-9 corners around the origin) extruded along z.

    Star-shaped about the origin, so a fan from the centre triangulates the caps.
    """
    n = int(rng.integers(5, 10))
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.25, 0.5, n)
    h = rng.uniform(0.3, 1.0)
    ring = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
    bottom = np.concatenate([ring, np.zeros((n, 1))], 1)
    top = np.concatenate([ring, np.full((n, 1), h)], 1)
    verts = np.concatenate([bottom, top, [[0, 0, 0], [0, 0, h]]])
    cb, ct = 2 * n, 2 * n + 1
    faces = []
    for i in range(n):
        j = (i + 1) % n
        faces += [[cb, j, i], [ct, n + i, n + j], [i, j, n + j], [i, n + j, n + i]]
    return _unit(trimesh.Trimesh(verts, np.array(faces), process=True))  # faces wound outwards above


def superquadric(rng: np.random.Generator) -> trimesh.Trimesh:
    """Superellipsoid with exponents e1, e2 in [0.3, 1.7] on a UV-sphere grid."""
    e1, e2 = rng.uniform(0.3, 1.7, 2)
    sph = trimesh.creation.uv_sphere(radius=1.0, count=(12, 20))
    v = sph.vertices
    r = np.linalg.norm(v, axis=1, keepdims=True)
    u = v / np.maximum(r, 1e-12)
    eta = np.arcsin(np.clip(u[:, 2], -1, 1))
    omega = np.arctan2(u[:, 1], u[:, 0])

    def sgnpow(x, p):
        return np.sign(x) * np.abs(x) ** p

    pts = np.stack([sgnpow(np.cos(eta), e1) * sgnpow(np.cos(omega), e2),
                    sgnpow(np.cos(eta), e1) * sgnpow(np.sin(omega), e2),
                    sgnpow(np.sin(eta), e1)], 1)
    mesh = trimesh.Trimesh(pts, sph.faces, process=True)
    return _unit(mesh)


PRIMITIVES: dict[str, Callable[[np.random.Generator], trimesh.Trimesh]] = {
    "box": box, "sphere": sphere, "cylinder": cylinder, "capsule": capsule, "cone": cone, "torus": torus,
}
PROCEDURAL: dict[str, Callable[[np.random.Generator], trimesh.Trimesh]] = {
    "hull": hull, "extrusion": extrusion, "superquadric": superquadric,
}

__all__ = ["PRIMITIVES", "PROCEDURAL"] + list(PRIMITIVES) + list(PROCEDURAL)
