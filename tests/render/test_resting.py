"""Resting placement without a simulation (`physics.simulate=false`): every object lies on a stable
face of its convex hull, on the floor, apart from the others."""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import ConvexHull

from synthssl.render.config import config_from_dict
from synthssl.render.resting import RestingFaces, face_down_rotation, resting_rotation, shared_hull_faces
from synthssl.render.scene import SceneSampler


def _support_holds_centre(vertices: np.ndarray, centre: np.ndarray) -> bool:
    """Whether ``centre``'s x-y lies in the convex hull of the vertices touching the floor (lowest z)."""
    low = vertices[vertices[:, 2] <= vertices[:, 2].min() + 1e-9, :2]
    if len(low) < 3:
        return False
    eq = ConvexHull(low).equations
    return bool(np.all(eq[:, :2] @ centre[:2] + eq[:, 2] <= 1e-9))


def test_a_box_rests_on_its_six_faces_the_largest_most_often():
    box = trimesh.creation.box(extents=[0.3, 0.2, 0.1])
    faces = RestingFaces(box.vertices)
    assert len(faces.normal) == 6 and faces.stable.all()  # 12 hull triangles merged into 6 faces
    assert sorted(np.round(faces.height, 12).tolist()) == [0.05, 0.05, 0.1, 0.1, 0.15, 0.15]
    assert all(len(faces.neighbours(f)) == 4 for f in range(6))
    rng = np.random.default_rng(0)
    heights: dict[float, int] = {}
    for _ in range(2000):
        v = box.vertices @ resting_rotation(box, rng).T
        assert abs(v[:, 2].min() + 0.5 * np.ptp(v[:, 2])) < 1e-12  # a face down: centred box, flat bottom
        h = round(float(np.ptp(v[:, 2])), 9)
        heights[h] = heights.get(h, 0) + 1
    assert heights == {0.1: 1266, 0.2: 507, 0.3: 227}  # the flattest pose the most often


def test_an_object_on_an_unstable_face_tips_onto_a_stable_one():
    # a leaning block: 0.1 x 0.1 x 0.3, its top shifted 0.5 along x, so its centre of mass overhangs
    # both square ends: standing on either, it tips over onto one of its long faces
    lean = trimesh.creation.box(extents=[0.1, 0.1, 0.3])
    lean = trimesh.Trimesh(lean.vertices + np.outer(lean.vertices[:, 2] + 0.15, [0.5 / 0.3, 0, 0]), lean.faces)
    faces = RestingFaces(lean.vertices)
    assert len(faces.normal) == 6 and faces.stable.tolist().count(False) == 2
    unstable = int(np.flatnonzero(~faces.stable)[0])
    assert faces.stable[faces.roll(unstable)] and faces.height[faces.roll(unstable)] < faces.height[unstable]
    rng = np.random.default_rng(1)
    for _ in range(200):
        R = resting_rotation(lean, rng)
        assert _support_holds_centre(lean.vertices @ R.T, R @ faces.centre)


def test_face_down_rotation_turns_the_normal_onto_minus_z():
    for n in ([0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.6, -0.48, 0.64]):
        n = np.asarray(n) / np.linalg.norm(n)
        R = face_down_rotation(n)
        assert np.allclose(R @ n, [0, 0, -1], atol=1e-12) and np.allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(R), 1.0)


def test_resting_scenes_lie_on_the_floor_stable_and_apart():
    cfg = config_from_dict({})  # the default placement
    assert cfg.physics.simulate is False
    sampler = SceneSampler(cfg)  # no pybullet client: none is needed
    objects = 0
    for index in range(20):
        scene = sampler.sample(0, index)
        assert scene.physics_steps == 0
        footprints = []
        for ob in scene.objects:
            v = trimesh.transform_points(ob.mesh.vertices, ob.pose)
            assert abs(float(v[:, 2].min())) < 1e-9  # on the floor, neither in it nor above it
            centre = trimesh.transform_points(RestingFaces(ob.mesh.vertices).centre[None], ob.pose)[0]
            assert _support_holds_centre(v, centre)
            footprints.append((ob.pose[:2, 3], float(np.max(np.linalg.norm(v[:, :2] - ob.pose[:2, 3], axis=1)))))
            objects += 1
        for i, (c, r) in enumerate(footprints):
            assert all(np.linalg.norm(c - d) >= r + s - 1e-9 for d, s in footprints[:i])  # apart
    assert objects == 111
    assert np.array_equal(sampler.sample(0, 3).objects[0].pose, SceneSampler(cfg).sample(0, 3).objects[0].pose)


def test_hull_faces_of_a_mesh_hold_for_its_scalings():
    # a fixed primitive or an asset is drawn again and again at new per-axis scales: its hull faces,
    # computed once (shared_hull_faces), give the faces, heights and stability of the scaled mesh
    rng = np.random.default_rng(3)
    for base in (
        trimesh.creation.cone(radius=0.5, height=1.0, sections=24),
        trimesh.creation.icosphere(subdivisions=2),
    ):
        shared = shared_hull_faces(base)
        assert shared is shared_hull_faces(base)
        for _ in range(5):
            v = base.vertices * rng.uniform(0.2, 1.0, 3)
            kept, fresh = RestingFaces(v, shared), RestingFaces(v)
            order = [np.lexsort(np.round(f.normal, 9).T) for f in (kept, fresh)]
            assert np.allclose(kept.normal[order[0]], fresh.normal[order[1]], atol=1e-12)
            assert np.allclose(kept.height[order[0]], fresh.height[order[1]], atol=1e-12)
            assert np.array_equal(kept.stable[order[0]], fresh.stable[order[1]])
            assert np.allclose(kept.centre, fresh.centre, atol=1e-12)
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    assert shared_hull_faces(flat) is None  # no volume: resting_rotation lays it on its plane
    R = resting_rotation(flat, np.random.default_rng(0), shared_hull_faces(flat))
    assert np.allclose(np.ptp(flat.vertices @ R.T, axis=0)[2], 0.0, atol=1e-12)
