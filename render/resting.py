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

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import ConvexHull, QhullError

#: Two hull triangles lie on one planar face when their plane equations differ by less than this
#: (unit normals; offsets in the mesh's units, metres).
COPLANAR_TOLERANCE = 1e-9

#: At most this many meshes keep their hull faces in `shared_hull_faces` (then it starts afresh).
SHARED_HULLS_LIMIT = 4096


@dataclass(frozen=True)
class HullFaces:
    """The convex hull of a point set as planar faces, by index only.

    Scaling the points by a positive factor per axis maps their hull onto the hull of the scaled
    points, and planes onto planes, so these indices hold for every such scaling of one mesh
    (`shared_hull_faces` keeps them for meshes that scenes draw again and again).
    """

    simplices: np.ndarray
    """int [T, 3]: qhull's hull triangles, indices into the points (winding not consistent)."""
    vertices: np.ndarray
    """int [K]: the points on the hull."""
    face_of: np.ndarray
    """int [T]: each triangle's planar face (faces numbered by their lowest triangle)."""
    first: np.ndarray
    """int [F]: each face's lowest triangle."""
    neighbour: np.ndarray
    """int: the faces sharing an edge with face f are ``neighbour[neighbour_start[f]:neighbour_start[f + 1]]``."""
    neighbour_start: np.ndarray
    """int [F + 1]."""


def hull_faces(points: np.ndarray) -> HullFaces:
    """The planar faces of the convex hull of ``points`` float [N, 3]: qhull's triangles merged where
    their planes agree within `COPLANAR_TOLERANCE` (a box has 6 faces, not 12 triangles).
    ``QhullError`` when the points span no volume (a flat mesh)."""
    hull = ConvexHull(np.asarray(points, np.float64))
    eq = hull.equations  # n . x + b = 0 on the plane, < 0 inside
    rows = np.repeat(np.arange(len(eq)), 3)
    cols = hull.neighbors.reshape(-1)
    same = np.abs(eq[rows] - eq[cols]).max(axis=1) < COPLANAR_TOLERANCE
    first, face_of = _components(same.reshape(-1, 3), hull.neighbors)
    count = len(first)
    edges = face_of[rows] != face_of[cols]
    pairs = np.unique(face_of[rows][edges].astype(np.int64) * count + face_of[cols][edges])  # sorted by face
    return HullFaces(
        simplices=hull.simplices,
        vertices=hull.vertices,
        face_of=face_of,
        first=first,
        neighbour=pairs % count,
        neighbour_start=np.searchsorted(pairs // count, np.arange(count + 1)),
    )


_shared_hulls: dict[int, tuple[trimesh.Trimesh, HullFaces | None]] = {}


def shared_hull_faces(mesh: trimesh.Trimesh) -> HullFaces | None:
    """`hull_faces` of ``mesh.vertices``, computed once per process for a mesh object that scenes
    draw again and again and scale (a fixed primitive, an asset; it must not be modified); None
    when the mesh is flat."""
    kept = _shared_hulls.get(id(mesh))
    if kept is not None and kept[0] is mesh:
        return kept[1]
    try:
        faces: HullFaces | None = hull_faces(mesh.vertices)
    except QhullError:
        faces = None
    if len(_shared_hulls) >= SHARED_HULLS_LIMIT:
        _shared_hulls.clear()
    _shared_hulls[id(mesh)] = (mesh, faces)  # the mesh is kept, so its id is not reused
    return faces


class RestingFaces:
    """The planar faces of a mesh's convex hull and which of them the mesh can rest on.

    ``normal`` float64 [F, 3] outward unit normals; ``height`` float64 [F]: the distance from the
    centre of mass to each face's plane (its height above the floor when resting on it);
    ``stable`` bool [F]; ``centre`` float64 [3]; `neighbours` gives the faces sharing an edge with
    a face. ``hull`` is `hull_faces` of ``vertices`` or of any positive per-axis scaling of them
    (computed here when None); each face's plane is taken from ``vertices``: its triangles'
    area-weighted normals, through its lowest triangle.
    """

    def __init__(self, vertices: np.ndarray, hull: HullFaces | None = None):
        pts = np.asarray(vertices, np.float64)
        hull = hull_faces(pts) if hull is None else hull
        tri = pts[hull.simplices]  # [T, 3 corners, 3]
        inner = pts[hull.vertices].mean(axis=0)
        centre = _solid_centroid(tri, inner)
        area = _cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # twice the area, along +-normal
        area *= np.sign(np.einsum("ij,ij->i", area, tri[:, 0] - inner))[:, None]  # outwards
        count = len(hull.first)
        summed = np.stack([np.bincount(hull.face_of, area[:, k], minlength=count) for k in range(3)], axis=1)
        normal = summed / np.linalg.norm(summed, axis=1, keepdims=True)
        self.normal = normal
        self.height = np.einsum("ij,ij->i", normal, tri[hull.first, 0] - centre)
        self.centre = centre
        # the centre of mass projected onto each triangle's plane: inside the triangle or not
        foot = centre + self.height[hull.face_of, None] * normal[hull.face_of]
        inside = _barycentric_inside(tri, foot)
        self.stable = np.bincount(hull.face_of, inside, minlength=count) > 0
        self._hull = hull

    def neighbours(self, face: int) -> np.ndarray:
        """int [k]: the faces sharing an edge with ``face``."""
        h = self._hull
        return h.neighbour[h.neighbour_start[face] : h.neighbour_start[face + 1]]

    def face_towards(self, direction: np.ndarray) -> int:
        """The face that the ray from the centre of mass along ``direction`` (a unit vector) leaves the hull through."""
        along = self.normal @ direction  # > 0: the ray can leave through that plane
        rate = np.where(along > 0, along / np.maximum(self.height, 1e-12), -np.inf)
        return int(np.argmax(rate))

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
    volume = np.abs(np.einsum("ij,ij->i", a, _cross(b, c)))
    if volume.sum() <= 0:
        return inner
    return inner + (volume[:, None] * (a + b + c) / 4).sum(axis=0) / volume.sum()


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross products of ``a`` and ``b`` float [N, 3] (``np.cross`` without its per-call overhead)."""
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


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
    axis = np.array([-normal[1], normal[0], 0.0])  # normal x (0, 0, -1)
    s, c = float(np.hypot(normal[0], normal[1])), -float(normal[2])
    if s < 1e-12:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])  # already down, or straight up: half a turn about x
    k = axis / s
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def resting_rotation(mesh: trimesh.Trimesh, rng: np.random.Generator, hull: HullFaces | None = None) -> np.ndarray:
    """float64 [3, 3] object-to-world rotation of ``mesh`` resting on a stable hull face (see the module
    docstring); ``hull`` as in `RestingFaces`. Draws from ``rng``: three normals (gravity's direction),
    then one uniform (the yaw)."""
    gravity = rng.standard_normal(3)
    gravity /= max(float(np.linalg.norm(gravity)), 1e-12)
    try:
        faces = RestingFaces(mesh.vertices, hull)
        down = faces.normal[faces.roll(faces.face_towards(gravity))]
    except QhullError:  # a flat mesh (no volume): it lies on its plane, the least-spread axis down
        centred = np.asarray(mesh.vertices, np.float64) - np.mean(mesh.vertices, axis=0)
        down = np.linalg.svd(centred, full_matrices=False)[2][-1]
    yaw = rng.uniform(0.0, 2.0 * np.pi)
    cz, sz = np.cos(yaw), np.sin(yaw)
    return np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]]) @ face_down_rotation(down)


__all__ = [
    "HullFaces",
    "RestingFaces",
    "hull_faces",
    "shared_hull_faces",
    "resting_rotation",
    "face_down_rotation",
    "COPLANAR_TOLERANCE",
    "SHARED_HULLS_LIMIT",
]
