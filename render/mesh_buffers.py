"""Vertex buffers (NumPy) for the two render passes of a mesh; no GL here.

Both passes use *unshared* vertices (three per face, ``mesh.vertices[mesh.faces]``):

* id pass: every vertex of face f of instance i carries the colour
  (i, f >> 8, f & 255) / 255, so a flat, unlit render gives each pixel the instance
  id (red) and the face index (green * 256 + blue) of the surface it shows. Face
  indices therefore need < 65536 faces per instance.
* colour pass: triplanar texture coordinates per face (the two coordinates of the
  face's dominant-normal plane, divided by the tile size) and normals that are the
  mesh's vertex normals where the surface is smooth and the face normal across
  creases (angle > ``crease_deg``).
"""

from __future__ import annotations

import numpy as np
import trimesh

MAX_FACES_PER_INSTANCE = 1 << 16


def unshared_positions(mesh: trimesh.Trimesh) -> np.ndarray:
    """float32 [F*3, 3] vertex positions, three per face."""
    return np.ascontiguousarray(mesh.vertices[mesh.faces].reshape(-1, 3), dtype=np.float32)


def id_colors(instance: int, num_faces: int) -> np.ndarray:
    """float32 [F*3, 4] vertex colours encoding (instance, face index); alpha 1."""
    if not 0 <= instance < 256:
        raise ValueError(f"instance id {instance} does not fit the 8-bit id pass (0..255)")
    if num_faces > MAX_FACES_PER_INSTANCE:
        raise ValueError(f"instance {instance}: {num_faces} faces exceed the {MAX_FACES_PER_INSTANCE} of the id pass")
    f = np.arange(num_faces)
    rgb = np.stack([np.full(num_faces, instance), f >> 8, f & 255], axis=1).astype(np.float32) / 255.0
    rgba = np.concatenate([rgb, np.ones((num_faces, 1), np.float32)], axis=1)
    return np.ascontiguousarray(np.repeat(rgba, 3, axis=0))


def decode_ids(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [H, W, 3] id-pass image -> (instance uint16 [H, W], face index int64 [H, W])."""
    rgb = rgb.astype(np.int64)
    return rgb[..., 0].astype(np.uint16), (rgb[..., 1] << 8) | rgb[..., 2]


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


__all__ = ["unshared_positions", "id_colors", "decode_ids", "shading_normals", "triplanar_uv", "MAX_FACES_PER_INSTANCE"]
