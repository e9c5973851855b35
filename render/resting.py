"""Stable resting poses on the floor (z = 0) from an object's convex hull: quasi-static toppling.

A rigid body lying on a plane rests on a facet of its convex hull, and it is in equilibrium there
when its centre of mass projects (along the facet's normal) inside that facet. Dropped in a random
orientation it first lands on the hull facet that the ray from the centre of mass along the
downward direction crosses; while the projection of the centre of mass falls outside the facet it
topples about the edge it falls over onto the facet across that edge, which lowers the centre of
mass, until it reaches a stable facet. This is the quasi-static model of part pose statistics
(Goldberg, Mirtich, Zhuang, Craig, Carlisle, Canny: "Part pose statistics: estimators and
experiments", IEEE T-RA 15(5), 1999), which `trimesh.poses.compute_stable_poses` implements as a
graph: a random orientation ends on each stable facet with the probability that model gives.

`resting_hull` prepares a mesh (object frame, scaled): its hull's triangles, which are stable and
where each unstable one topples to. The hull's combinatorics (triangles, neighbours) do not
change under the per-axis scaling of `synthssl.render.scene`, so they are computed once per base
mesh (`HullTopology`, cached while that mesh lives: the fixed primitives and the assets) and only
the geometry per object. `rest_rotation` turns a random orientation into the
rotation that rests the body on the stable facet it topples to, keeping the heading the random
orientation gave (the smallest rotation that brings that facet face down).

The centre of mass is the hull's volume centroid: inside the hull by construction, and for the
convex and nearly convex shapes drawn here close to that of the solid. Frames: the object frame
(metres); rotations are object-to-world, world z up.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull

#: Barycentric tolerance of "inside a triangle": a projection on an edge is stable.
INSIDE_TOL = 1e-9


def _cross(a, b) -> np.ndarray:
    """Cross product over the last axis (length 3), broadcasting: `np.cross` without its per-call
    overhead (it dominates for the small arrays here)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.stack(
        [
            a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
            a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
            a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0],
        ],
        axis=-1,
    )


@dataclass(frozen=True)
class HullTopology:
    """The combinatorics of a point set's convex hull (unchanged by per-axis scaling).

    A facet of the hull with more than three corners is split into triangles; the body rests on
    such a facet when the centre of mass projects inside any of them, and a triangle whose
    projection lies in a coplanar neighbour topples onto it without turning (the same normal)."""

    vertices: np.ndarray
    """int64 [P]: the input points on the hull."""
    triangles: np.ndarray
    """int64 [F, 3]: the hull's triangles, indices into ``vertices``' points, counter-clockwise
    seen from outside."""
    neighbors: np.ndarray
    """int64 [F, 3]: the triangle across the edge opposite vertex k."""


@dataclass(frozen=True)
class RestingHull:
    """A scaled hull ready for `rest_rotation` (object frame, metres)."""

    points: np.ndarray
    """float64 [P, 3]: the hull's vertices."""
    normals: np.ndarray
    """float64 [F, 3]: each triangle's outward unit normal."""
    heights: np.ndarray
    """float64 [F]: the centre of mass's distance from each triangle's plane (> 0)."""
    stable: np.ndarray
    """bool [F]: the centre of mass projects inside the triangle."""
    topple: np.ndarray
    """int64 [F]: where an unstable triangle's body goes (itself for a stable one)."""
    com: np.ndarray
    """float64 [3]: the centre of mass."""


def hull_topology(points: np.ndarray) -> HullTopology:
    """The `HullTopology` of ``points`` [N, 3]; ValueError when they span no volume."""
    pts = np.asarray(points, np.float64)
    try:
        hull = ConvexHull(pts)
    except Exception as exc:  # scipy's QhullError: flat or too few points
        raise ValueError(f"no convex hull with volume: {str(exc).strip().splitlines()[0]}") from None
    tri = np.asarray(hull.simplices, np.int64)
    a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
    normals = np.asarray(hull.equations[:, :3])
    flip = np.einsum("ij,ij->i", _cross(b - a, c - a), normals) < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]  # counter-clockwise from outside; swap the neighbours alike
    neighbors = np.asarray(hull.neighbors, np.int64).copy()
    neighbors[flip] = neighbors[flip][:, [0, 2, 1]]
    index = np.full(len(pts), -1, np.int64)
    index[hull.vertices] = np.arange(len(hull.vertices))
    return HullTopology(np.asarray(hull.vertices, np.int64), index[tri], neighbors)


_topologies: dict[int, tuple[weakref.ref, HullTopology]] = {}


def cached_topology(mesh) -> HullTopology:
    """`hull_topology` of ``mesh.vertices``, kept while ``mesh`` (a base mesh, before scaling) lives."""
    entry = _topologies.get(id(mesh))
    if entry is not None and entry[0]() is mesh:
        return entry[1]
    topo = hull_topology(np.asarray(mesh.vertices))
    key = id(mesh)
    _topologies[key] = (weakref.ref(mesh, lambda _, key=key: _topologies.pop(key, None)), topo)
    return topo


def resting_hull(points: np.ndarray, topology: HullTopology | None = None) -> RestingHull:
    """The `RestingHull` of ``points`` [N, 3] (object frame); ``topology``: that of the points'
    hull, or of the same points before a per-axis scaling (computed when None)."""
    pts = np.asarray(points, np.float64)
    topo = topology if topology is not None else hull_topology(pts)
    hp = pts[topo.vertices]
    tri = topo.triangles
    a, b, c = hp[tri[:, 0]], hp[tri[:, 1]], hp[tri[:, 2]]
    cross = _cross(b - a, c - a)
    area2 = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(area2, 1e-300)[:, None]
    inner = hp.mean(axis=0)  # inside the hull: the tetrahedra to it have positive volume
    vol = np.einsum("ij,ij->i", a - inner, cross)
    com = (vol[:, None] * (inner + a + b + c)).sum(axis=0) / (4.0 * vol.sum())
    heights = np.einsum("ij,ij->i", a - com, normals)
    p = com + heights[:, None] * normals  # the centre of mass projected on each triangle's plane
    bary = _barycentric(a, b, c, cross, area2, p)
    stable = bary.min(axis=1) >= -INSIDE_TOL
    return RestingHull(hp, normals, heights, stable, _topple_targets(a, b, c, normals, p, bary, topo, stable), com)


def _barycentric(a, b, c, cross, area2, p) -> np.ndarray:
    """[F, 3]: barycentric coordinates of p[i] (in triangle i's plane) for its vertices a, b, c."""
    n = cross / np.maximum(area2 * area2, 1e-300)[:, None]
    wa = np.einsum("ij,ij->i", _cross(b - p, c - p), n)
    wb = np.einsum("ij,ij->i", _cross(c - p, a - p), n)
    return np.stack([wa, wb, 1.0 - wa - wb], axis=1)


def _topple_targets(a, b, c, normals, p, bary, topo: HullTopology, stable) -> np.ndarray:
    """[F]: for each unstable triangle, the neighbour across the edge whose wedge from the
    triangle's centroid holds the projected centre of mass (the edge the body falls over)."""
    g = (a + b + c) / 3.0
    verts = np.stack([a, b, c], axis=1)  # [F, 3 vertices, 3]
    rel = verts - g[:, None, :]
    pg = p - g
    # wedge of the edge opposite vertex k: from vertex k+1 to k+2 (counter-clockwise about n)
    v1, v2 = np.roll(rel, -1, axis=1), np.roll(rel, -2, axis=1)
    side1 = np.einsum("fkj,fj->fk", _cross(v1, pg[:, None, :]), normals) >= 0
    side2 = np.einsum("fkj,fj->fk", _cross(pg[:, None, :], v2), normals) >= 0
    wedge = side1 & side2
    k = np.where(wedge.any(axis=1), np.argmax(wedge, axis=1), np.argmin(bary, axis=1))
    target = topo.neighbors[np.arange(len(k)), k]
    return np.where(stable, np.arange(len(k)), target)


def resting_triangle(h: RestingHull, down: np.ndarray) -> int:
    """The hull triangle the body rests on when dropped with ``down`` (object frame: the world's -z
    at the drop) pointing to the floor: the triangle first touched, then toppled over until stable.

    The centre of mass drops at every topple onto another plane, so the walk ends; should it
    revisit a triangle (rounding, or a walk inside one plane), the body rests on the lowest seen."""
    d = np.asarray(down, np.float64)
    facing = h.normals @ d
    reach = np.full(len(facing), np.inf)
    np.divide(h.heights, facing, out=reach, where=facing > 0)
    t = int(np.argmin(reach))
    seen: set[int] = set()
    while not h.stable[t]:
        if t in seen:
            return min(seen, key=lambda s: float(h.heights[s]))
        seen.add(t)
        t = int(h.topple[t])
    return t


def rest_rotation(h: RestingHull, rotation: np.ndarray) -> np.ndarray:
    """float64 [3, 3]: the object-to-world rotation that rests the body on the stable facet it
    topples to when dropped in orientation ``rotation`` (object-to-world): ``rotation`` turned by
    the smallest rotation that brings that facet's normal to world -z."""
    R = np.asarray(rotation, np.float64)
    t = resting_triangle(h, R.T @ np.array([0.0, 0.0, -1.0]))
    return align(R @ h.normals[t], np.array([0.0, 0.0, -1.0])) @ R


def align(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """float64 [3, 3]: the smallest rotation taking direction ``u`` to direction ``v``."""
    u = np.asarray(u, np.float64) / np.linalg.norm(u)
    v = np.asarray(v, np.float64) / np.linalg.norm(v)
    axis = _cross(u, v)
    s, c = float(np.linalg.norm(axis)), float(u @ v)
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        perp = _cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
        perp /= np.linalg.norm(perp)
        return 2.0 * np.outer(perp, perp) - np.eye(3)  # half a turn about an axis normal to u
    k = axis / s
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


__all__ = [
    "HullTopology",
    "RestingHull",
    "hull_topology",
    "cached_topology",
    "resting_hull",
    "resting_triangle",
    "rest_rotation",
    "align",
]
