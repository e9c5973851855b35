"""Resting orientations without a simulation: each object lies on a stable face of its convex hull.

A rigid body dropped onto a plane comes to rest on a face of its convex hull, and only on a face
its centre of mass projects into (a *stable* face). `resting_rotation` draws the direction of
gravity in the object's frame uniformly on the sphere (a random orientation at release), takes
the hull face that direction points through, and tips the object quasi-statically: from a face
that is not stable it rolls onto the neighbouring face that lowers the centre of mass most, until
it reaches a stable face (every step lowers the centre of mass, so the walk ends). This is the
resting-face distribution of a slow drop; a fast one may bounce onto another stable face.

Conventions: the centre of mass is that of the hull as a solid of uniform density; hull faces
are qhull's triangles, merged into planar faces when coplanar (a box has 6 faces, not 12
triangles); the returned rotation maps the object frame to the world (z up) with the chosen face
facing straight down (its outward normal on -z), turned about z by a uniform yaw.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import ConvexHull, QhullError

#: Two hull triangles lie on one planar face when their plane equations differ by less than this
#: (unit normals; offsets in the mesh's units, metres).
COPLANAR_TOLERANCE = 1e-9


class RestingFaces:
    """The planar faces of a mesh's convex hull and which of them the mesh can rest on.

    ``normal`` float64 [F, 3] outward unit normals; ``height`` float64 [F]: the distance from the
    centre of mass to each face's plane (its height above the floor when resting on it);
    ``stable`` bool [F]; `neighbours` gives the faces sharing an edge with a face.
    """

    def __init__(self, vertices: np.ndarray):
        hull = ConvexHull(np.asarray(vertices, np.float64))
        tri = hull.points[hull.simplices]  # [T, 3 corners, 3]
        eq = hull.equations  # n . x + b = 0 on the plane, < 0 inside
        centre = _solid_centroid(tri, hull.points[hull.vertices].mean(axis=0))
        rows = np.repeat(np.arange(len(eq)), 3)
        cols = hull.neighbors.reshape(-1)
        same = np.abs(eq[rows] - eq[cols]).max(axis=1) < COPLANAR_TOLERANCE
        first, face_of = _components(same.reshape(-1, 3), hull.neighbors)
        count = len(first)
        self.normal = eq[first, :3]
        self.height = -(eq[first, :3] @ centre + eq[first, 3])
        self.centre = centre
        # the centre of mass projected onto each triangle's plane: inside the triangle or not
        foot = centre - (eq[:, :3] @ centre + eq[:, 3])[:, None] * eq[:, :3]
        inside = _barycentric_inside(tri, foot)
        self.stable = np.zeros(count, bool)
        np.logical_or.at(self.stable, face_of, inside)
        edges = face_of[rows] != face_of[cols]
        pairs = np.unique(face_of[rows][edges].astype(np.int64) * count + face_of[cols][edges])  # sorted by face
        self._neighbour = pairs % count
        self._neighbour_start = np.searchsorted(pairs // count, np.arange(count + 1))
        self._triangle_normal, self._triangle_offset, self._face_of = eq[:, :3], eq[:, 3], face_of

    def neighbours(self, face: int) -> np.ndarray:
        """int [k]: the faces sharing an edge with ``face``."""
        return self._neighbour[self._neighbour_start[face] : self._neighbour_start[face + 1]]

    def face_towards(self, direction: np.ndarray) -> int:
        """The face that the ray from the centre of mass along ``direction`` (a unit vector) leaves the hull through."""
        along = self._triangle_normal @ direction  # > 0: the ray can leave through that plane
        distance = -(self._triangle_normal @ self.centre + self._triangle_offset)
        rate = np.where(along > 0, along / np.maximum(distance, 1e-12), -np.inf)
        return int(self._face_of[int(np.argmax(rate))])

    def roll(self, face: int) -> int:
        """The stable face an object standing on ``face`` tips onto (``face`` itself when stable)."""
        while not self.stable[face]:
            around = self.neighbours(face)
            lower = around[np.argmin(self.height[around])] if len(around) else face
            if self.height[lower] >= self.height[face]:
                break  # a local minimum of the height: the object stays (only for degenerate hulls)
            face = int(lower)
        return face


def _components(linked: np.ndarray, neighbors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of triangles joined where ``linked`` [T, 3] marks an edge to
    ``neighbors`` [T, 3]: (the lowest triangle of each component, in increasing order; each
    triangle's component index). Labels spread as the minimum over linked neighbours, with pointer
    jumping, until they settle."""
    label = np.arange(len(neighbors))
    while True:
        reached = np.where(linked, label[neighbors], label[:, None]).min(axis=1)
        new = np.minimum(label, reached)
        new = new[new]
        if np.array_equal(new, label):
            break
        label = new
    first, component = np.unique(label, return_inverse=True)
    return first, component.reshape(-1)


def _solid_centroid(tri: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Centroid of the solid bounded by the triangles ``tri`` [T, 3, 3] (a closed convex surface) with
    uniform density: the volume-weighted centroids of the tetrahedra (inner point, triangle)."""
    a, b, c = tri[:, 0] - inner, tri[:, 1] - inner, tri[:, 2] - inner
    volume = np.abs(np.einsum("ij,ij->i", a, np.cross(b, c)))
    if volume.sum() <= 0:
        return inner
    return inner + (volume[:, None] * (a + b + c) / 4).sum(axis=0) / volume.sum()


def _barycentric_inside(tri: np.ndarray, point: np.ndarray) -> np.ndarray:
    """bool [T]: whether ``point[t]`` (on triangle t's plane) lies in triangle ``tri[t]`` (edges included)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, point - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    ok = den > 0
    den = np.where(ok, den, 1.0)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    eps = 1e-9
    return ok & (v >= -eps) & (w >= -eps) & (v + w <= 1 + eps)


def face_down_rotation(normal: np.ndarray) -> np.ndarray:
    """float64 [3, 3]: the rotation taking the unit vector ``normal`` onto -z by the shortest arc."""
    down = np.array([0.0, 0.0, -1.0])
    axis = np.cross(normal, down)
    s, c = float(np.linalg.norm(axis)), float(normal @ down)
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])  # already down, or straight up: half a turn about x
    k = axis / s
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def resting_rotation(mesh: trimesh.Trimesh, rng: np.random.Generator) -> np.ndarray:
    """float64 [3, 3] object-to-world rotation of ``mesh`` resting on a stable hull face (see the module
    docstring). Draws from ``rng``: three normals (gravity's direction), then one uniform (the yaw)."""
    gravity = rng.standard_normal(3)
    gravity /= max(float(np.linalg.norm(gravity)), 1e-12)
    try:
        faces = RestingFaces(mesh.vertices)
        down = faces.normal[faces.roll(faces.face_towards(gravity))]
    except QhullError:  # a flat mesh (no volume): it lies on its plane, the least-spread axis down
        centred = np.asarray(mesh.vertices, np.float64) - np.mean(mesh.vertices, axis=0)
        down = np.linalg.svd(centred, full_matrices=False)[2][-1]
    yaw = rng.uniform(0.0, 2.0 * np.pi)
    cz, sz = np.cos(yaw), np.sin(yaw)
    return np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]]) @ face_down_rotation(down)


__all__ = ["RestingFaces", "resting_rotation", "face_down_rotation", "COPLANAR_TOLERANCE"]
