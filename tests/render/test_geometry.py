"""Geometric exactness of rendered maps (depth, normals, instances, contours, cameras)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from synthssl.dataset import geometry
from synthssl.dataset.schema import FIRST_OBJECT_ID, FLOOR_ID
from synthssl.render.appearance import Light, Material, look_at_pose
from synthssl.render.cameras import CameraView, Orbit, intrinsics, look_at
from synthssl.render.renderer import SceneRenderer, camera_normals
from synthssl.render.scene import Scene, SceneObject

pytestmark = [pytest.mark.gl]


def _rays(h, w, K):
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T


def _hand_scene(box_pose):
    mat = Material(np.array([0.5, 0.5, 0.5]), 0.5, 0.0, None, "plain", 0.5)
    box = trimesh.creation.box(extents=(0.4, 0.3, 0.2))
    obj = SceneObject(box, "box", "test", np.array([0.4, 0.3, 0.2]), box_pose, mat, smooth=False)
    light = Light("directional", np.ones(3), 3.0, look_at_pose(np.array([1.0, 1.0, 3.0]), np.zeros(3)))
    orbit = Orbit(0.0, 45.0, 2.0, np.zeros(3), 0.0, 50.0)
    return Scene(
        index=0,
        objects=[obj],
        floor_material=mat,
        walls=None,
        wall_material=None,
        lights=[light],
        ambient=np.full(3, 0.3),
        background=np.zeros(3),
        base_orbit=orbit,
        center=np.zeros(3),
    )


@pytest.fixture(scope="module")
def renderer():
    r = SceneRenderer(48, 64, backend="auto")
    yield r
    r.close()


def test_floor_depth_and_normal_are_exact_at_pixel_centres(renderer):
    """A tilted, rolled, off-centre camera over the floor: depth = ray/plane intersection at each pixel centre."""
    pose = np.eye(4)
    pose[:3, 3] = [5.0, 5.0, 0.1]  # box far away, out of view
    b = renderer.build(_hand_scene(pose))
    K = intrinsics(55.0, 48, 64)
    K[0, 2] += 3.3  # off-centre principal point exercises the half-pixel convention
    K[1, 2] -= 2.1
    T = look_at(np.array([0.3, -1.7, 1.1]), np.array([0.1, 0.2, 0.0]), roll_deg=17.0)
    view = CameraView(K, T, 48, 64)
    g = renderer.render_geometry(b, view)
    rays = _rays(48, 64, K)
    d_world = rays @ T[:3, :3].T
    expected = -T[2, 3] / d_world[..., 2]  # rays have z = 1, so the ray parameter is the z-depth
    floor = g.instance == FLOOR_ID
    assert floor.mean() > 0.5
    rel = np.abs(g.depth[floor] - expected[floor]) / expected[floor]
    assert rel.max() < 2e-6, rel.max()  # float32 rounding; a 24-bit depth buffer is off by 1e-5 and more
    # a half-pixel shift of the principal point would be far above this tolerance
    n = camera_normals(b, g, view)
    assert np.allclose(n[floor], T[:3, :3].T @ np.array([0.0, 0.0, 1.0]), atol=1e-6)


def test_box_faces_have_exact_normals_and_ids(renderer):
    pose = np.eye(4)
    c, s = np.cos(0.4), np.sin(0.4)
    pose[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    pose[:3, 3] = [0.0, 0.0, 0.1]
    b = renderer.build(_hand_scene(pose))
    K = intrinsics(50.0, 48, 64)
    T = look_at(np.array([1.2, -0.9, 1.0]), np.array([0.0, 0.0, 0.1]))
    view = CameraView(K, T, 48, 64)
    g = renderer.render_geometry(b, view)
    n = camera_normals(b, g, view)
    box = g.instance == FIRST_OBJECT_ID
    assert box.sum() > 100
    axes = np.concatenate([pose[:3, :3].T, -pose[:3, :3].T])  # world normals of the six faces
    cam_axes = axes @ T[:3, :3]
    # every box pixel carries exactly one of the six face normals
    err = np.min(np.linalg.norm(n[box][:, None, :] - cam_axes[None], axis=-1), axis=1)
    assert err.max() < 1e-6
    # the top face is seen and its points lie at z = 0.2 in the world
    pts = geometry.transform(geometry.unproject(g.depth, K), T)
    top = box & (np.abs(n @ (T[:3, :3].T @ [0, 0, 1.0]) - 1) < 1e-6)
    assert top.sum() > 20
    assert np.abs(pts[top][:, 2] - 0.2).max() < 1e-4


def test_reprojection_lands_on_agreeing_depth_and_same_instance(rendered):
    """View-0 pixels lifted, moved and projected into view 1 agree with view 1's depth unless occluded.

    Where the four view-1 pixel centres around the projection lie on one face (same
    instance and identical normal), inverse depth is affine in (u, v), so bilinear
    interpolation of 1/depth is exact: the point must match it (visible) or lie behind
    it (occluded); in front of it only where an object sliver falls between pixel centres.
    """
    cfg, coll, all_scenes = rendered
    matched_total = checked_total = 0
    for s in all_scenes:
        K, T, depth, inst = s["intrinsics"], s["cam_to_world"], s["depth"], s["instance"]
        nrm = s["normal"][1]
        pts = geometry.transform(geometry.unproject(depth[0], K[0]), geometry.relative_transform(T[0], T[1]))
        uv, z = geometry.project(pts, K[1])
        h, w = depth.shape[1:]
        ok = (depth[0] > 0) & np.isfinite(uv[..., 0])
        u = np.nan_to_num(uv[..., 0], nan=-10.0)
        v = np.nan_to_num(uv[..., 1], nan=-10.0)
        ok &= (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
        u0 = np.clip(np.floor(u), 0, w - 2).astype(int)
        v0 = np.clip(np.floor(v), 0, h - 2).astype(int)
        corners = [(v0, u0), (v0, u0 + 1), (v0 + 1, u0), (v0 + 1, u0 + 1)]
        same = ok & (depth[1][v0, u0] > 0)
        for r, c in corners[1:]:
            same &= (inst[1][r, c] == inst[1][v0, u0]) & np.all(nrm[r, c] == nrm[v0, u0], axis=-1)
        fu, fv = u - u0, v - v0
        inv = (
            (1 - fu) * (1 - fv) / np.maximum(depth[1][v0, u0], 1e-9)
            + fu * (1 - fv) / np.maximum(depth[1][v0, u0 + 1], 1e-9)
            + (1 - fu) * fv / np.maximum(depth[1][v0 + 1, u0], 1e-9)
            + fu * fv / np.maximum(depth[1][v0 + 1, u0 + 1], 1e-9)
        )
        rel = (z - 1.0 / inv) / z
        # Exact on one face up to float32 rounding: 1e-4 keeps every true match and leaves out
        # contact points, where an object touching the floor lies within 1e-3 of the floor's depth.
        matched = same & (np.abs(rel) < 1e-4)
        # in front of the surface view 1 sees: only slivers of objects thinner than the pixel grid
        assert np.mean(rel[same] < -1e-3) < 0.005, "view-0 points lie in front of the surface view 1 sees"
        assert np.array_equal(inst[0][matched], inst[1][v0, u0][matched])
        matched_total += matched.sum()
        checked_total += same.sum()
        assert s["overlap"][0] == pytest.approx(geometry.overlap(depth[0], K[0], T[0], depth[1], K[1], T[1]), abs=1e-6)
    assert checked_total > 1000 and matched_total > 0.7 * checked_total  # the rest are occluded


def test_normals_match_surface_and_face_the_camera(rendered):
    cfg, coll, all_scenes = rendered
    angles = []
    for s in all_scenes:
        for v in range(cfg.views):
            K, T = s["intrinsics"][v].astype(np.float64), s["cam_to_world"][v].astype(np.float64)
            n = s["normal"][v].astype(np.float64)
            depth, inst = s["depth"][v], s["instance"][v]
            surface = depth > 0
            assert np.array_equal(surface, inst > 0)
            assert np.all(np.linalg.norm(n[~surface], axis=-1) == 0)
            assert np.allclose(np.linalg.norm(n[surface], axis=-1), 1, atol=2e-3)
            rays = _rays(*depth.shape, K)
            assert np.all(np.sum(n * rays, -1)[surface] <= 1e-3)  # towards the camera
            floor = inst == FLOOR_ID
            assert np.allclose(n[floor], T[:3, :3].T @ [0, 0, 1.0], atol=2e-3)
            # flat interior pixels: cross product of unprojected neighbours
            p = geometry.unproject(depth, K)
            dx = p[1:-1, 2:] - p[1:-1, :-2]
            dy = p[2:, 1:-1] - p[:-2, 1:-1]
            nd = np.cross(dx, dy)
            nd /= np.maximum(np.linalg.norm(nd, axis=-1, keepdims=True), 1e-12)
            c = n[1:-1, 1:-1]
            same = np.ones_like(c[..., 0], dtype=bool)
            for sl in (n[1:-1, 2:], n[1:-1, :-2], n[2:, 1:-1], n[:-2, 1:-1]):
                same &= np.all(sl == c, axis=-1)  # all four neighbours on the same face
            same &= inst[1:-1, 1:-1] >= FIRST_OBJECT_ID
            cos = np.abs(np.sum(nd * c, -1))[same]
            angles.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    angles = np.concatenate(angles)
    assert len(angles) > 200
    assert np.median(angles) < 1.0 and np.percentile(angles, 90) < 5.0, (np.median(angles), np.percentile(angles, 90))


def test_contours_are_instance_boundaries_and_categories_follow_instances(rendered):
    cfg, coll, all_scenes = rendered
    names = coll.category_names
    for s in all_scenes:
        inst, cont = s["instance"].astype(np.int64), s["contour"]
        for v in range(cfg.views):
            i = inst[v]
            padded = np.pad(i, 1, mode="edge")
            differs = np.zeros(i.shape, bool)
            for dr, dc in ((0, 1), (2, 1), (1, 0), (1, 2)):
                differs |= padded[dr : dr + i.shape[0], dc : dc + i.shape[1]] != i
            assert np.array_equal(cont[v].astype(bool), differs)
        n = int(s["object_count"])
        lut = {0: 0, 1: 1, 2: 2}
        lut.update({int(a): int(c) for a, c in zip(s["object_instance"][:n], s["object_category"][:n])})
        assert np.array_equal(s["category"], np.vectorize(lut.get)(inst))
        assert all(names[int(c)] not in ("background", "floor", "wall") for c in s["object_category"][:n])
