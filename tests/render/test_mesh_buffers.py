"""Per-vertex arrays of the renderer's vertex buffer: vertex normals as trimesh defines them."""

from __future__ import annotations

import numpy as np
import trimesh

from synthssl.render import shapes
from synthssl.render.mesh_buffers import shading_normals, vertex_normals


def test_vertex_normals_are_trimeshs_angle_weighted_normals():
    rng = np.random.default_rng(0)
    meshes = [shapes.PROCEDURAL[name](rng) for name in ("extrusion", "superquadric", "lathe", "blob", "hull")]
    meshes += [shapes.PRIMITIVES[name](rng) for name in ("sphere", "capsule", "torus", "cone")]
    for mesh in meshes:
        scaled = trimesh.Trimesh(mesh.vertices * rng.uniform(0.2, 1.0, 3), mesh.faces, process=False)
        ours = vertex_normals(scaled.vertices, scaled.faces, np.asarray(scaled.face_normals))
        assert np.allclose(ours, scaled.vertex_normals, rtol=0, atol=1e-12)
    # a vertex whose faces' normals cancel has no normal: 0, and the face normal shades there
    tent = trimesh.Trimesh(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2], [0, 4, 3]], process=False
    )
    assert np.array_equal(vertex_normals(tent.vertices, tent.faces, np.asarray(tent.face_normals))[0], [0.0, 0.0, 0.0])
    shaded = shading_normals(tent, smooth=True)
    assert np.array_equal(shaded[0], np.float32(tent.face_normals[0])) and np.array_equal(
        shaded[3], np.float32(tent.face_normals[1])
    )
