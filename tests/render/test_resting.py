"""Resting poses: stable facets reached by quasi-static toppling, and the placement quality of scenes."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import ConvexHull, Delaunay
from scipy.spatial.transform import Rotation

from synthssl.render.config import config_from_dict
from synthssl.render.resting import align, cached_topology, hull_topology, rest_rotation, resting_hull
from synthssl.render.scene import SceneSampler

DOWN = np.array([0.0, 0.0, -1.0])


def _rest_normals(h, n, seed=0):
    """The object-frame outward normal of the facet each of ``n`` random drops rests on."""
    rng = np.random.default_rng(seed)
    return np.array([rest_rotation(h, Rotation.random(random_state=rng).as_matrix()).T @ DOWN for _ in range(n)])


def test_a_cube_rests_on_each_face_equally_often():
    h = resting_hull(trimesh.creation.box().vertices)
    assert np.allclose(h.com, 0.0, atol=1e-12) and np.allclose(h.heights, 0.5)
    assert h.stable.all()  # the centre projects inside every triangle (on the diagonal: within the tolerance)
    normals = _rest_normals(h, 3000)
    faces, counts = np.unique(np.round(normals).astype(int), axis=0, return_counts=True)
    assert len(faces) == 6 and np.allclose(np.abs(normals).max(axis=1), 1.0)
    assert counts.min() > 430 and counts.max() < 570  # 500 each; binomial sd 20


def test_a_slab_lands_flat_as_often_as_its_big_faces_subtend():
    h = resting_hull(trimesh.creation.box(extents=(1.0, 1.0, 0.1)).vertices)
    assert h.stable.all()  # standing on a thin side is an equilibrium too
    flat = np.mean(np.isclose(np.abs(_rest_normals(h, 2000)[:, 2]), 1.0))
    # the two 1 x 1 faces seen from the centre, 0.05 away: 4 asin(ab / sqrt((a^2 + 4d^2)(b^2 + 4d^2))) each
    expected = 2 * 4 * np.arcsin(1 / 1.01) / (4 * np.pi)
    assert abs(expected - 0.9103) < 1e-4 and abs(flat - expected) < 0.03  # binomial sd 0.006


def test_the_stable_pose_odds_match_trimesh_quasi_static_model():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-0.5, 0.5, (14, 3)) * [1.0, 0.7, 0.4]
    mesh = trimesh.convex.convex_hull(pts)
    h = resting_hull(mesh.vertices)
    transforms, probs = trimesh.poses.compute_stable_poses(mesh, center_mass=h.com)
    theirs = {tuple(np.round(t[:3, :3].T @ DOWN, 3)): p for t, p in zip(transforms, probs)}
    normals = _rest_normals(h, 4000, seed=1)
    keys, counts = np.unique(np.round(normals, 3), axis=0, return_counts=True)
    ours = {tuple(k): c / len(normals) for k, c in zip(keys, counts)}
    assert set(ours) <= set(theirs)  # every pose reached is one of the model's stable poses
    for k, p in theirs.items():
        assert abs(ours.get(k, 0.0) - p) < 0.03, (k, p, ours.get(k))  # sampling sd <= 0.008


def test_a_scaled_mesh_keeps_its_hull_topology():
    base = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=12)
    scaled = base.vertices * [0.3, 0.2, 0.6]
    topology = cached_topology(base)
    assert cached_topology(base) is topology
    assert np.array_equal(hull_topology(scaled).vertices, topology.vertices)  # the caps' triangles may differ
    h1, h2 = resting_hull(scaled, topology), resting_hull(scaled)
    assert np.allclose(h1.com, h2.com) and np.allclose(h1.points, h2.points)
    rng = np.random.default_rng(5)
    for R in Rotation.random(500, random_state=rng).as_matrix():
        assert np.allclose(rest_rotation(h1, R), rest_rotation(h2, R), atol=1e-9)


def test_the_rest_rotation_lays_the_facet_on_the_floor_and_keeps_the_heading():
    h = resting_hull(trimesh.creation.box(extents=(0.4, 0.3, 0.2)).vertices)
    R0 = Rotation.from_euler("zx", [30, 5], degrees=True).as_matrix()  # tilted 5 degrees: lands on -z
    R = rest_rotation(h, R0)
    assert np.allclose(R, Rotation.from_euler("z", 30, degrees=True).as_matrix(), atol=1e-12)
    assert np.allclose(align(np.array([0.0, 0.0, 1.0]), DOWN) @ [0.0, 0.0, 1.0], DOWN)
    assert np.allclose(align(DOWN, DOWN), np.eye(3))


def test_flat_points_have_no_hull():
    with pytest.raises(ValueError, match="no convex hull with volume"):
        hull_topology(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]]))


def _support_holds_com(points: np.ndarray, com: np.ndarray, tol: float) -> bool:
    """The centre of mass projects into the support polygon: the convex hull of the points
    touching the floor (a resting facet has at least three)."""
    contact = points[points[:, 2] <= tol][:, :2]
    return len(contact) >= 3 and bool(Delaunay(contact).find_simplex(com[:2], tol=1e-7) >= 0)


@pytest.mark.slow
def test_placement_quality_over_100_scenes():
    """Objects lie on the floor in equilibrium: none floats above 1 mm or sinks below it, the centre
    of mass projects onto its support, no two objects interpenetrate by more than 1 % of the
    smaller one's size."""
    sampler = SceneSampler(config_from_dict({}))
    objects = 0
    for i in range(100):
        scene = sampler.sample(0, i)
        hulls = []
        for o in scene.objects:
            v = o.mesh.vertices @ o.pose[:3, :3].T + o.pose[:3, 3]
            size = float(np.max(o.mesh.extents))
            assert -1e-9 <= v[:, 2].min() <= 1e-3, (i, o.source)  # touches the floor, not below it
            com = resting_hull(o.mesh.vertices).com @ o.pose[:3, :3].T + o.pose[:3, 3]
            assert _support_holds_com(v, com, tol=1e-6 * size), (i, o.source)
            hulls.append((ConvexHull(v).equations, v, size))
            objects += 1
        for a, (eq, _, size_a) in enumerate(hulls):
            for b, (_, pts, size_b) in enumerate(hulls):
                if a != b:  # depth of b's deepest vertex inside a's hull (> 0: inside)
                    depth = float(np.min(-(pts @ eq[:, :3].T + eq[:, 3]), axis=1).max())
                    assert depth <= 0.01 * min(size_a, size_b), (i, a, b, depth)
    assert objects > 400
