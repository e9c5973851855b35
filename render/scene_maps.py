"""Render one scene into the shard's per-scene dict (all views, all maps, metadata).

View 0 looks at the scene; each further view is re-sampled (up to
``camera.max_tries`` times, id pass only) until its overlap with view 0 lies in
``camera.overlap``; otherwise the closest draw is kept. View sampling and lighting
jitter use their own stream ``default_rng([seed, index, 1])``.
"""

from __future__ import annotations

import time

import numpy as np

from synthssl.dataset.contour import contour_from_instance
from synthssl.dataset.geometry import overlap as view_overlap
from synthssl.dataset.schema import FIRST_OBJECT_ID, FLOOR_ID, WALL_ID

from .appearance import jitter_lights
from .cameras import orbit_view, overlap_distance, sample_offset_orbit
from .config import RenderConfig
from .renderer import SceneRenderer, camera_normals
from .scene import SceneSampler


def category_lut(sampler: SceneSampler, scene) -> np.ndarray:
    """uint16 [256]: instance id -> category id for ``scene`` (0 for unused ids)."""
    lut = np.zeros(256, np.uint16)
    lut[FLOOR_ID], lut[WALL_ID] = 1, 2
    for k, ob in enumerate(scene.objects):
        lut[FIRST_OBJECT_ID + k] = sampler.category_ids[ob.category]
    return lut


def render_scene(cfg: RenderConfig, sampler: SceneSampler, renderer: SceneRenderer, index: int) -> tuple[dict, dict]:
    """Scene ``index`` of ``cfg.seed`` -> (shard scene dict, stage timings in seconds + counters)."""
    scene = sampler.sample(cfg.seed, index)
    t0 = time.perf_counter()
    built = renderer.build(scene, cfg.appearance.floor_size)
    t1 = time.perf_counter()
    rng = np.random.default_rng([int(cfg.seed), int(index), 1])
    size, cam = cfg.size, cfg.camera
    views = [orbit_view(scene.base_orbit, size, size)]
    geoms = [renderer.render_geometry(built, views[0])]
    overlaps, tries = [], 0
    for _ in range(1, cfg.views):
        best = None
        for _ in range(cam.max_tries):
            tries += 1
            view = orbit_view(sample_offset_orbit(rng, cam, scene.base_orbit, scene.center), size, size)
            g = renderer.render_geometry(built, view)
            ov = view_overlap(geoms[0].depth, views[0].K, views[0].cam_to_world, g.depth, view.K, view.cam_to_world)
            miss = overlap_distance(ov, *cam.overlap)
            if best is None or miss < best[0]:
                best = (miss, view, g, ov)
            if miss == 0:
                break
        _, view, g, ov = best
        views.append(view)
        geoms.append(g)
        overlaps.append(ov)
    t2 = time.perf_counter()
    instance = np.stack([g.instance for g in geoms])
    contour = contour_from_instance(instance)  # a shard map, and what edge anti-aliasing filters
    rgb = np.stack(
        [
            renderer.render_color(built, v, jitter_lights(rng, scene.lights, cfg.appearance.view_light_jitter), c)
            for v, c in zip(views, contour)
        ]
    )
    t3 = time.perf_counter()
    lut = category_lut(sampler, scene)
    m, n = cfg.objects.max_objects, len(scene.objects)
    object_pose = np.zeros((m, 4, 4), np.float32)
    object_scale = np.zeros((m, 3), np.float32)
    object_instance = np.zeros(m, np.uint16)
    object_category = np.zeros(m, np.uint16)
    for k, ob in enumerate(scene.objects):
        object_pose[k], object_scale[k] = ob.pose, ob.scale
        object_instance[k] = FIRST_OBJECT_ID + k
        object_category[k] = sampler.category_ids[ob.category]
    out = {
        "rgb": rgb,
        "depth": np.stack([g.depth for g in geoms]),
        "normal": np.stack([camera_normals(built, g, v) for g, v in zip(geoms, views)]).astype(np.float16),
        "instance": instance,
        "contour": contour,
        "category": lut[instance],
        "intrinsics": np.stack([v.K for v in views]).astype(np.float32),
        "cam_to_world": np.stack([v.cam_to_world for v in views]).astype(np.float32),
        "scene_id": np.int64(index),
        "overlap": np.asarray(overlaps, np.float32),
        "object_count": np.uint16(n),
        "object_instance": object_instance,
        "object_category": object_category,
        "object_pose": object_pose,
        "object_scale": object_scale,
        "objects_json": scene.objects_json(sampler.category_ids),
    }
    t4 = time.perf_counter()
    stats = {
        **scene.timings,
        "gl_build": t1 - t0,
        "geometry_passes": t2 - t1,
        "color_passes": t3 - t2,
        "maps": t4 - t3,
        "view_tries": tries,
        "physics_steps": scene.physics_steps,
    }
    return out, stats


__all__ = ["render_scene", "category_lut"]
