"""The render's exact speed-ups change no output: one renderer's framebuffers and buffers reused
across passes, the farthest-point hull reduction, and the rasterizer threads each worker gets."""

from __future__ import annotations

import numpy as np
import pytest

from synthssl.render import worker_pool
from synthssl.render.physics import _farthest_points


def _farthest_points_reference(pts: np.ndarray, k: int) -> np.ndarray:
    """The reduction written with `np.linalg.norm`, as the docstring of `_farthest_points` states it."""
    chosen = list(dict.fromkeys([*np.argmin(pts, axis=0).tolist(), *np.argmax(pts, axis=0).tolist()]))
    dist = np.min(np.linalg.norm(pts[:, None, :] - pts[chosen][None], axis=-1), axis=1)
    while len(chosen) < k:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[i], axis=1))
    return np.array(chosen)


@pytest.mark.parametrize("seed", range(5))
def test_farthest_points_choose_what_the_norm_reference_chooses(seed):
    pts = np.random.default_rng(seed).normal(size=(400, 3)) * [1.0, 0.3, 2.0]
    got = _farthest_points(pts, 96)
    assert got.tolist() == _farthest_points_reference(pts, 96).tolist()
    assert len(set(got.tolist())) == 96


@pytest.mark.parametrize(
    ("cpus", "workers", "expected"),
    [(2, 2, "0"), (16, 16, "0"), (16, 8, "2"), (16, 3, "5"), (4, 8, "0")],
)
def test_each_worker_gets_its_share_of_rasterizer_threads(monkeypatch, cpus, workers, expected):
    # a share of one CPU rasterizes in the worker's own thread (0), not in one extra thread
    monkeypatch.delenv("LP_NUM_THREADS", raising=False)
    monkeypatch.setattr(worker_pool.os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert worker_pool.rasterizer_threads_env(workers) == {"LP_NUM_THREADS": expected}
    assert worker_pool.rasterizer_threads_env(1) == {}
    monkeypatch.setenv("LP_NUM_THREADS", "3")  # the user's choice stands
    assert worker_pool.rasterizer_threads_env(workers) == {}


@pytest.mark.gl
def test_alternating_passes_give_what_fresh_renderers_give():
    from synthssl.render.cameras import orbit_view
    from synthssl.render.config import config_from_dict
    from synthssl.render.renderer import SceneRenderer
    from synthssl.render.scene import SceneSampler

    cfg = config_from_dict({"physics": {"enabled": False}})
    scene = SceneSampler(cfg, None).sample(3, 1)
    view = orbit_view(scene.base_orbit, 40, 40)
    renderer = SceneRenderer(40, 40)
    try:
        built = renderer.build(scene)
        alternating = [(renderer.render_geometry(built, view), renderer.render_color(built, view)) for _ in range(3)]
    finally:
        renderer.close()
    fresh = []
    for kind in ("geometry", "color"):
        r = SceneRenderer(40, 40)
        try:
            b = r.build(scene)
            fresh.append(r.render_geometry(b, view) if kind == "geometry" else r.render_color(b, view))
        finally:
            r.close()
    for geometry, color in alternating:
        assert np.array_equal(geometry.depth, fresh[0].depth)
        assert np.array_equal(geometry.instance, fresh[0].instance)
        assert np.array_equal(color, fresh[1])
    assert np.any(alternating[0][0].instance >= 3)  # the view shows objects, not only the floor
