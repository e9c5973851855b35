"""Placed objects rest on the floor or on each other: nothing dips into the floor or into another
object, nothing floats (the placement-quality bar of docs/render.md, over 100 scenes), with the
pybullet simulation and with the resting placement."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.spatial import ConvexHull, cKDTree

from synthssl.render import provenance
from synthssl.render.config import config_from_dict
from synthssl.render.physics import CONTACT_TOLERANCE, PhysicsWorld, lift_onto_floor, physics_available
from synthssl.render.scene import SceneSampler

needs_pybullet = pytest.mark.skipif(not physics_available(), reason="pybullet not installed")


def _box(extents, centre) -> tuple[trimesh.Trimesh, np.ndarray]:
    pose = np.eye(4)
    pose[:3, 3] = centre
    return trimesh.creation.box(extents=extents), pose


def test_lift_raises_a_sunk_object_and_what_rests_on_it_only():
    sunk, sunk_pose = _box([0.2, 0.2, 0.2], [0.0, 0.0, 0.095])  # 5 mm into the floor
    on_top, top_pose = _box([0.1, 0.1, 0.1], [0.02, 0.0, 0.245])  # rests on it (bottom at 0.195)
    apart, apart_pose = _box([0.1, 0.1, 0.1], [1.0, 0.0, 0.05])  # on the floor elsewhere
    beside, beside_pose = _box([0.1, 0.1, 0.1], [1.0, 0.0, 0.16])  # rests on `apart`, not on `sunk`
    poses = lift_onto_floor([sunk, on_top, apart, beside], [sunk_pose, top_pose, apart_pose, beside_pose])
    assert [round(float(p[2, 3]), 9) for p in poses] == [0.1, 0.25, 0.05, 0.16]
    for p, q in zip(poses, [sunk_pose, top_pose, apart_pose, beside_pose]):
        assert np.array_equal(p[:3, :3], q[:3, :3]) and np.array_equal(p[:2, 3], q[:2, 3])


def test_the_render_version_enters_the_config_hash(monkeypatch):
    cfg = config_from_dict({}).to_dict()
    assert json.loads(provenance.content_json(cfg))["render_version"] == provenance.RENDER_VERSION
    before = provenance.content_json(cfg)
    monkeypatch.setattr(provenance, "RENDER_VERSION", provenance.RENDER_VERSION + 1)
    assert provenance.content_json(cfg) != before


def _surface_points(mesh: trimesh.Trimesh, count: int = 2000) -> np.ndarray:
    """Vertices plus ``count`` area-weighted surface samples (seeded)."""
    samples, _ = trimesh.sample.sample_surface(mesh, count, seed=0)
    return np.concatenate([mesh.vertices, samples])


def _placement_quality(sampler: SceneSampler) -> tuple[int, list[float], list[float], list[float]]:
    """Over scenes 0-99 of seed 0: (objects, each object's dip below the floor over its size, the gap
    to the nearest other object of each object off the floor, each object's reach into another's
    convex hull over the smaller object's size)."""
    objects, floor_dips, lifted_off, reach_in = 0, [], [], []
    for index in range(100):
        scene = sampler.sample(0, index)
        meshes = [
            trimesh.Trimesh(trimesh.transform_points(o.mesh.vertices, o.pose), o.mesh.faces, process=False)
            for o in scene.objects
        ]
        points = [_surface_points(m) for m in meshes]
        hulls = [ConvexHull(m.vertices) for m in meshes]
        for k, mesh in enumerate(meshes):
            objects += 1
            size = float(np.max(mesh.extents))
            low = float(mesh.vertices[:, 2].min())
            floor_dips.append(-low / size)
            if low > CONTACT_TOLERANCE:  # not on the floor: it must touch another object
                dense = [_surface_points(m, 50_000) for m in meshes]
                gap = min(float(cKDTree(dense[j]).query(dense[k])[0].min()) for j in range(len(meshes)) if j != k)
                lifted_off.append(gap)
            for j, hull in enumerate(hulls):
                if j != k:  # depth of k's surface inside j's convex hull: bounds the depth inside j
                    depth = -(points[k] @ hull.equations[:, :3].T + hull.equations[:, 3]).max(axis=1)
                    reach_in.append(max(0.0, float(depth.max())) / min(size, float(np.max(meshes[j].extents))))
    return objects, floor_dips, lifted_off, reach_in


@pytest.mark.slow
@needs_pybullet
def test_settled_scenes_neither_sink_nor_interpenetrate_nor_float():
    sampler = SceneSampler(config_from_dict({"physics": {"simulate": True}}), world := PhysicsWorld())
    try:
        objects, floor_dips, lifted_off, reach_in = _placement_quality(sampler)
    finally:
        world.close()
    assert objects == 566
    assert max(floor_dips) <= 1e-9  # the lowest vertex of every object is on or above the floor
    assert len(lifted_off) == 1 and max(lifted_off) < 2e-3  # it rests on another (within the samples' spacing)
    assert max(reach_in) <= 0.01  # at most 1 % of the smaller object's size


@pytest.mark.slow
def test_resting_scenes_lie_on_the_floor_apart():
    objects, floor_dips, lifted_off, reach_in = _placement_quality(SceneSampler(config_from_dict({})))
    assert objects == 566  # the same objects as the simulation's scenes: placement draws after them
    assert max(map(abs, floor_dips)) <= 1e-9 and lifted_off == []  # every object on the floor
    assert max(reach_in) == 0.0  # bounding circles apart: no object reaches into another's hull
