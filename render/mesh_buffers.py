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


def shading_normals(mesh: trimesh.Trimesh, smooth: bool, crease_deg: float = 35.0) -> np.ndarray:
    """float32 [F*3, 3] per-vertex shading normals (object frame) for the colour pass."""
    fn = np.repeat(mesh.face_normals, 3, axis=0)
    if not smooth:
        return np.ascontiguousarray(fn, dtype=np.float32)
    vn = mesh.vertex_normals[mesh.faces].reshape(-1, 3)
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


__all__ = ["unshared_positions", "shading_normals", "triplanar_uv"]
