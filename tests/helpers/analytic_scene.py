"""Geometrically exact test scenes, ray-cast analytically (NumPy only).

A floor plane z = 0 (world frame, z up) with a few spheres resting on it, seen by
V pinhole cameras looking at the origin. Depth, normals and instance ids are
computed in closed form, so tests can build shards whose geometry is exact
without a GL context. Conventions follow ``synthssl.dataset.schema``.
"""

from __future__ import annotations

import json

import numpy as np

from synthssl.dataset.contour import contour_from_instance
from synthssl.dataset.schema import FIRST_OBJECT_ID, FLOOR_ID


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """cam_to_world [4,4] of an OpenCV camera at ``eye`` looking at ``target`` (image y down)."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, eye
    return T


def make_scene(
    scene_id: int, size: int = 32, views: int = 2, max_objects: int = 4, seed: int = 0, spread_deg: float = 25.0
) -> dict:
    """One scene dict in the shard layout (view fields [V, ...])."""
    rng = np.random.default_rng([seed, scene_id])
    n_obj = int(rng.integers(1, max_objects + 1))
    radii = rng.uniform(0.25, 0.5, n_obj)
    centres = np.stack([rng.uniform(-0.8, 0.8, n_obj), rng.uniform(-0.8, 0.8, n_obj), radii], axis=1)
    f = size * rng.uniform(0.9, 1.2)
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1]])
    az0, el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(30, 50))
    out = {k: [] for k in ("rgb", "depth", "normal", "instance", "category", "contour", "intrinsics", "cam_to_world")}
    depth0 = None
    for v in range(views):
        az = az0 + np.deg2rad(spread_deg) * v
        dist = 4.0 + 0.3 * v
        eye = dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        T = look_at(eye, np.array([0.0, 0.0, 0.3]))
        d, n, inst = _raycast(size, K, T, centres, radii)
        colour_table = np.array(
            [[0, 0, 0], [120, 120, 120], [60, 60, 60]]
            + [[40 + 50 * k % 200, 200 - 30 * k % 180, 90 + 70 * k % 160] for k in range(max_objects)],
            dtype=np.float64,
        )
        shade = np.clip(-n[..., 2:3], 0.2, 1.0)
        rgb = (colour_table[inst] * shade).clip(0, 255).astype(np.uint8)
        out["rgb"].append(rgb)
        out["depth"].append(d.astype(np.float32))
        out["normal"].append(n.astype(np.float16))
        out["instance"].append(inst.astype(np.uint16))
        out["category"].append(np.where(inst >= FIRST_OBJECT_ID, FIRST_OBJECT_ID, inst).astype(np.uint16))
        out["contour"].append(contour_from_instance(inst))
        out["intrinsics"].append(K.astype(np.float32))
        out["cam_to_world"].append(T.astype(np.float32))
        depth0 = d if depth0 is None else depth0
    scene = {k: np.stack(vs) for k, vs in out.items()}
    from synthssl.dataset.geometry import overlap

    scene["overlap"] = np.array(
        [
            overlap(scene["depth"][0], K, scene["cam_to_world"][0], scene["depth"][v], K, scene["cam_to_world"][v])
            for v in range(1, views)
        ],
        dtype=np.float32,
    )
    scene["scene_id"] = np.int64(scene_id)
    scene["object_count"] = np.uint16(n_obj)
    pose = np.zeros((max_objects, 4, 4), np.float32)
    scale = np.zeros((max_objects, 3), np.float32)
    inst_ids = np.zeros(max_objects, np.uint16)
    cats = np.zeros(max_objects, np.uint16)
    for k in range(n_obj):
        pose[k] = np.eye(4)
        pose[k, :3, 3] = centres[k]
        scale[k] = radii[k]
        inst_ids[k] = FIRST_OBJECT_ID + k
        cats[k] = FIRST_OBJECT_ID
    scene.update(object_pose=pose, object_scale=scale, object_instance=inst_ids, object_category=cats)
    scene["objects_json"] = json.dumps([{"source": "sphere", "category": "sphere", "radius": float(r)} for r in radii])
    return scene


def _raycast(size, K, T, centres, radii):
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    rays_cam = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T  # z component = 1
    R, o = T[:3, :3], T[:3, 3]
    rays_w = rays_cam @ R.T
    best_t = np.full((size, size), np.inf)
    normal_w = np.zeros((size, size, 3))
    inst = np.zeros((size, size), np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_plane = -o[2] / rays_w[..., 2]
    hit = (t_plane > 0) & np.isfinite(t_plane)
    best_t[hit] = t_plane[hit]
    normal_w[hit] = [0, 0, 1]
    inst[hit] = FLOOR_ID
    for k, (c, r) in enumerate(zip(centres, radii)):
        oc = o - c
        a = (rays_w**2).sum(-1)
        b = 2 * (rays_w @ oc)
        cc = oc @ oc - r * r
        disc = b * b - 4 * a * cc
        with np.errstate(invalid="ignore"):
            t = (-b - np.sqrt(disc)) / (2 * a)
        h = (disc > 0) & (t > 0) & (t < best_t)
        best_t[h] = t[h]
        p = o + rays_w[h] * t[h][:, None]
        normal_w[h] = (p - c) / r
        inst[h] = FIRST_OBJECT_ID + k
    depth = np.where(np.isfinite(best_t), best_t, 0.0)  # rays_cam has z = 1, so t is z-depth
    n_cam = normal_w @ R  # R^T n for each pixel
    return depth, n_cam, inst


def write_shards(
    directory,
    num_scenes: int,
    shard_size: int,
    size: int = 32,
    views: int = 2,
    max_objects: int = 4,
    seed: int = 0,
    compression: str = "lzf",
):
    """Write ``num_scenes`` analytic scenes into shards of ``shard_size`` plus a manifest; returns paths."""
    from pathlib import Path

    from synthssl.dataset.manifest import update_manifest
    from synthssl.dataset.writer import ShardWriter

    directory = Path(directory)
    paths = []
    for k, first in enumerate(range(0, num_scenes, shard_size)):
        p = directory / f"shard-{k:05d}.h5"
        attrs = {
            "seed": seed,
            "first_scene": first,
            "render_config": {"generator": "analytic", "size": size},
            "category_names": ["background", "floor", "wall", "sphere"],
        }
        with ShardWriter(
            p, height=size, width=size, views=views, max_objects=max_objects, attrs=attrs, compression=compression
        ) as w:
            for sid in range(first, min(first + shard_size, num_scenes)):
                w.append(make_scene(sid, size, views, max_objects, seed))
        paths.append(p)
    update_manifest(directory)
    return paths
