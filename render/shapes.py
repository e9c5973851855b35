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


#: The generators that return one and the same mesh object at every call (built once per process).
SHARED_SHAPES = frozenset({"box", "sphere", "cylinder", "cone"})


@functools.lru_cache(maxsize=None)
def _fixed(name: str) -> trimesh.Trimesh:
    """Parameter-free primitives are built once per process (callers never modify them)."""
    make = {
        "box": lambda: trimesh.creation.box(extents=(1.0, 1.0, 1.0)),
        "sphere": lambda: trimesh.creation.icosphere(subdivisions=2),
        "cylinder": lambda: trimesh.creation.cylinder(radius=0.5, height=1.0, sections=24),
        "cone": lambda: trimesh.creation.cone(radius=0.5, height=1.0, sections=24),
    }[name]
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
    sph = _fixed_uv_sphere()
    v = sph.vertices
    r = np.linalg.norm(v, axis=1, keepdims=True)
    u = v / np.maximum(r, 1e-12)
    eta = np.arcsin(np.clip(u[:, 2], -1, 1))
    omega = np.arctan2(u[:, 1], u[:, 0])

    def sgnpow(x, p):
        return np.sign(x) * np.abs(x) ** p

    pts = np.stack(
        [
            sgnpow(np.cos(eta), e1) * sgnpow(np.cos(omega), e2),
            sgnpow(np.cos(eta), e1) * sgnpow(np.sin(omega), e2),
            sgnpow(np.sin(eta), e1),
        ],
        1,
    )
    mesh = trimesh.Trimesh(pts, sph.faces, process=True)
    return _unit(mesh)


def lathe(rng: np.random.Generator) -> trimesh.Trimesh:
    """A surface of revolution (vase, bottle, bowl, spindle): a random smooth radius profile
    r(z) > 0 swept around the z axis, capped at both ends.

    The profile interpolates 3-6 radii in [0.1, 0.5] with a cosine ease over 16 rings; each
    ring has 24 sections. Non-convex whenever the profile has a waist.
    """
    knots = rng.uniform(0.1, 0.5, int(rng.integers(3, 7)))
    h = rng.uniform(0.6, 1.5)
    t = np.linspace(0, len(knots) - 1, 16)
    i = np.minimum(t.astype(int), len(knots) - 2)
    w = (1 - np.cos(np.pi * (t - i))) / 2
    radius = knots[i] * (1 - w) + knots[i + 1] * w
    z = np.linspace(0, h, len(radius))
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    s, k = len(ang), len(radius)
    rings = np.stack(
        [radius[:, None] * np.cos(ang), radius[:, None] * np.sin(ang), np.broadcast_to(z[:, None], (k, s))], -1
    ).reshape(-1, 3)
    verts = np.concatenate([rings, [[0, 0, 0], [0, 0, h]]])
    cb, ct = k * s, k * s + 1
    faces = []
    for a in range(k - 1):
        for j in range(s):
            p00, p01 = a * s + j, a * s + (j + 1) % s
            p10, p11 = p00 + s, p01 + s
            faces += [[p00, p01, p11], [p00, p11, p10]]  # (angle tangent) x (up) points outwards
    for j in range(s):
        faces += [[cb, (j + 1) % s, j], [ct, (k - 1) * s + j, (k - 1) * s + (j + 1) % s]]
    return _unit(trimesh.Trimesh(verts, np.array(faces), process=True))


def blob(rng: np.random.Generator) -> trimesh.Trimesh:
    """An organic, star-shaped body (pebble, tuber, fruit): an icosphere whose radius along
    each direction d is 1 + sum_k a_k sin(f_k <w_k, d> + phi_k), with 3 low-frequency waves
    (f_k in [1, 3], sum of a_k <= 0.6, so the radius stays >= 0.4 and the surface never
    folds over itself)."""
    sph = _fixed_icosphere()
    d = np.asarray(sph.vertices, np.float64)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    w = rng.normal(size=(3, 3))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    amp = rng.dirichlet(np.ones(3)) * rng.uniform(0.2, 0.6)
    r = 1 + (amp * np.sin(rng.uniform(1, 3, 3) * (d @ w.T) + rng.uniform(0, 2 * np.pi, 3))).sum(axis=1)
    return _unit(trimesh.Trimesh(d * r[:, None], sph.faces, process=True))


@functools.lru_cache(maxsize=None)
def _fixed_uv_sphere() -> trimesh.Trimesh:
    """The unit UV sphere (12 x 20 grid) that `superquadric` deforms."""
    return trimesh.creation.uv_sphere(radius=1.0, count=(12, 20))


@functools.lru_cache(maxsize=None)
def _fixed_icosphere() -> trimesh.Trimesh:
    """The unit icosphere (642 vertices) that `blob` displaces."""
    return trimesh.creation.icosphere(subdivisions=3)


PRIMITIVES: dict[str, Callable[[np.random.Generator], trimesh.Trimesh]] = {
    "box": box,
    "sphere": sphere,
    "cylinder": cylinder,
    "capsule": capsule,
    "cone": cone,
    "torus": torus,
}
PROCEDURAL: dict[str, Callable[[np.random.Generator], trimesh.Trimesh]] = {
    "hull": hull,
    "extrusion": extrusion,
    "superquadric": superquadric,
    "lathe": lathe,
    "blob": blob,
}

__all__ = ["PRIMITIVES", "PROCEDURAL", "SHARED_SHAPES"] + list(PRIMITIVES) + list(PROCEDURAL)
