"""Per-vertex arrays (NumPy) of a mesh for the renderer's vertex buffer; no GL here.

Vertices are *unshared* (three per face, ``mesh.vertices[mesh.faces]``), so that a triangle's index
in the buffer is its face index (the id pass reads it back) and each face can carry its own
texture coordinates: triplanar ones (the two coordinates of the face's dominant-normal plane,
divided by the tile size). Shading normals are the mesh's vertex normals where the surface is
smooth and the face normal across creases (angle > ``crease_deg``).
"""

from __future__ import annotations

import numpy as np
import trimesh


def unshared_positions(mesh: trimesh.Trimesh) -> np.ndarray:
    """float32 [F*3, 3] vertex positions, three per face."""
    return np.ascontiguousarray(mesh.vertices[mesh.faces].reshape(-1, 3), dtype=np.float32)


#: A vector no longer than this has no direction (trimesh's ``tol.zero``).
ZERO_LENGTH = 1e-13
#: A triangle with a corner angle below this (radians) is degenerate: it adds to no vertex normal.
DEGENERATE_ANGLE = 1e-8


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, face_normals: np.ndarray) -> np.ndarray:
    """float64 [V, 3] unit vertex normals: the normals of the faces around each vertex, weighted by
    each face's angle at the vertex (trimesh's ``vertex_normals`` convention; a vertex on no
    face gets 0)."""
    tri = np.asarray(vertices, np.float64)[faces]
    u = _unit_rows(tri[:, 1] - tri[:, 0])
    v = _unit_rows(tri[:, 2] - tri[:, 0])
    w = _unit_rows(tri[:, 2] - tri[:, 1])
    angle = np.empty((len(tri), 3))
    angle[:, 0] = np.arccos(np.clip(np.einsum("ij,ij->i", u, v), -1.0, 1.0))
    angle[:, 1] = np.arccos(np.clip(-np.einsum("ij,ij->i", u, w), -1.0, 1.0))
    angle[:, 2] = np.pi - angle[:, 0] - angle[:, 1]
    angle[(angle < DEGENERATE_ANGLE).any(axis=1)] = 0.0
    corners, weights = np.asarray(faces).reshape(-1), angle.reshape(-1)
    count = len(vertices)
    summed = np.stack(
        [np.bincount(corners, weights * np.repeat(face_normals[:, k], 3), minlength=count) for k in range(3)], axis=1
    )
    return _unit_rows(summed)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` [N, 3] with every row scaled to length 1; a row no longer than `ZERO_LENGTH` becomes 0."""
    length = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, length, out=np.zeros_like(x), where=length > ZERO_LENGTH)


def shading_normals(mesh: trimesh.Trimesh, smooth: bool, crease_deg: float = 35.0) -> np.ndarray:
    """float32 [F*3, 3] per-vertex shading normals (object frame) for the colour pass."""
    face_normals = np.asarray(mesh.face_normals, np.float64)
    fn = np.repeat(face_normals, 3, axis=0)
    if not smooth:
        return np.ascontiguousarray(fn, dtype=np.float32)
    vn = vertex_normals(mesh.vertices, mesh.faces, face_normals)[mesh.faces].reshape(-1, 3)
    crease = np.sum(vn * fn, axis=1) < np.cos(np.deg2rad(crease_deg))
    vn = np.where(crease[:, None], fn, vn)
    return np.ascontiguousarray(vn, dtype=np.float32)


def triplanar_uv(positions: np.ndarray, face_normals: np.ndarray, tile: float) -> np.ndarray:
    """float32 [F*3, 2] texture coordinates: per face, project on the plane of its dominant normal axis."""
    axis = np.repeat(np.argmax(np.abs(face_normals), axis=1), 3)
    pairs = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    rows = np.arange(len(positions))
    uv = np.stack([positions[rows, pairs[:, 0]], positions[rows, pairs[:, 1]]], axis=1) / tile
    return np.ascontiguousarray(uv, dtype=np.float32)


__all__ = ["unshared_positions", "shading_normals", "triplanar_uv", "vertex_normals", "DEGENERATE_ANGLE", "ZERO_LENGTH"]
