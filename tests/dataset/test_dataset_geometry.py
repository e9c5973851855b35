"""Geometry helpers against exact, analytically ray-cast scenes."""

from __future__ import annotations

import numpy as np
from helpers.analytic_scene import make_scene

from synthssl.dataset.contour import contour_from_instance
from synthssl.dataset.geometry import nearest_pixel, overlap, project, reproject, unproject


def test_unproject_project_round_trip():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 3, (7, 9))
    K = np.array([[11.0, 0.3, 4.2], [0, 12.0, 3.1], [0, 0, 1]])
    uv, z = project(unproject(depth, K), K)
    v, u = np.mgrid[0:7, 0:9]
    np.testing.assert_allclose(uv[..., 0], u, atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], v, atol=1e-9)
    np.testing.assert_allclose(z, depth)


def test_reprojection_lands_on_same_surface_and_instance():
    s = make_scene(3, size=48)
    K, T, D, I = s["intrinsics"], s["cam_to_world"], s["depth"], s["instance"]
    uv, vis = reproject(D[0], K[0], T[0], D[1], K[1], T[1])
    assert vis.sum() > 0.5 * (D[0] > 0).sum()
    r, c = nearest_pixel(uv)
    same = I[1][r[vis], c[vis]] == I[0][vis]
    assert same.mean() > 0.97  # misses only at silhouettes, where the nearest pixel crosses a boundary
    assert 0.3 < overlap(D[0], K[0], T[0], D[1], K[1], T[1]) <= 1.0


def test_reprojection_detects_occlusion():
    s = make_scene(3, size=48)
    K, T, D = s["intrinsics"], s["cam_to_world"], s["depth"]
    far = D[1].copy()
    far[far > 0] += 1.0  # everything in view 1 pushed back: nothing of view 0 is visible on it
    _, vis = reproject(D[0], K[0], T[0], far, K[1], T[1])
    # only points whose depth in view 1 happens to equal an occluder's pushed-back depth survive
    assert vis.sum() < 0.02 * (D[0] > 0).sum()


def test_normals_match_surface_from_depth():
    s = make_scene(1, size=64)
    pts = unproject(s["depth"][0], s["intrinsics"][0])
    n = s["normal"][0].astype(np.float64)
    floor = s["instance"][0] == 1
    dx = pts[1:-1, 2:] - pts[1:-1, :-2]
    dy = pts[2:, 1:-1] - pts[:-2, 1:-1]
    fd = np.cross(dx, dy)
    fd /= np.linalg.norm(fd, axis=-1, keepdims=True)
    interior = floor[1:-1, 1:-1] & floor[2:, 1:-1] & floor[:-2, 1:-1] & floor[1:-1, 2:] & floor[1:-1, :-2]
    cos = np.abs((fd * n[1:-1, 1:-1]).sum(-1))[interior]
    assert np.median(cos) > 0.999
    ray = pts / np.linalg.norm(pts, axis=-1, keepdims=True)
    assert ((n * ray).sum(-1)[s["depth"][0] > 0] <= 1e-3).all()  # normals face the camera


def test_contour_marks_both_sides_of_boundaries():
    inst = np.zeros((6, 7), np.uint16)
    inst[1:5, 2:6] = 3  # a 4x4 object
    c = contour_from_instance(inst)
    expected = np.zeros_like(c)
    expected[1:5, 2:6] = 1
    expected[2:4, 3:5] = 0  # object interior
    expected[0, 2:6] = expected[5, 2:6] = 1  # background above and below
    expected[1:5, 1] = expected[1:5, 6] = 1  # background left and right
    np.testing.assert_array_equal(c, expected)
