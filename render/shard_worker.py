"""Rendering and writing whole shards in one process: `ShardWorker`.

A `ShardWorker` holds what a process needs to turn a `~synthssl.render.resume.ShardPlan` into
a finished shard: the render config, the scene sampler, the physics world (when pybullet is
installed) and one GL renderer (one context), built once and reused for every shard it writes.
`ShardWorker.write` renders the plan's scenes, compresses and writes them
(:class:`~synthssl.dataset.writer.ShardWriter`: temporary file, then rename) with the render's
provenance attributes (`synthssl.render.provenance`), then writes the shard's sidecar. The
worker pool (`synthssl.render.worker_pool`) builds one in each spawned process; a run with one
worker builds one in the calling process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from synthssl.dataset.layout import sidecar_path
from synthssl.dataset.manifest import record_finished
from synthssl.dataset.writer import ShardWriter

from .config import config_from_dict
from .physics import PhysicsWorld, physics_available
from .provenance import Provenance
from .renderer import SceneRenderer
from .resume import ShardPlan
from .scene import SceneSampler
from .scene_maps import render_scene


@dataclass
class ShardResult:
    """What a worker reports for one finished shard (the scenes themselves stay in the file)."""

    index: int
    relpath: str
    """where the shard sits in the output folder."""
    num_scenes: int
    stage_seconds: dict[str, float]
    """summed over the shard's scenes; ``write`` = append (compression) + file write + sidecar."""
    overlaps: list[float]
    """each scene's overlap of view 0 with the other views (``overlap`` [V-1] per scene, flattened)."""


class ShardWorker:
    """Writes the shards of one render in this process (see the module docstring).

    ``cfg_dict``: the render config as ``RenderConfig.to_dict()`` (recorded in every shard as
    ``render_config``); ``provenance``: the render's `Provenance`. Physics is used when the
    config enables it and pybullet imports; the caller says once per run when it does not
    (`~synthssl.render.physics.physics_notice`). Close it (or use it as a context manager) to
    release the GL context and the physics client.
    """

    def __init__(self, cfg_dict: dict, provenance: Provenance):
        self.cfg = config_from_dict(cfg_dict)
        self.cfg_dict = cfg_dict
        self.provenance = provenance
        cfg = self.cfg
        self.physics = PhysicsWorld() if cfg.physics.pybullet and physics_available() else None
        try:
            self.sampler = SceneSampler(cfg, self.physics)
            self.renderer = SceneRenderer(cfg.size, cfg.size, cfg.backend, cfg.appearance.antialias_mode)
        except BaseException:
            self._close_physics()
            raise

    def write(self, plan: ShardPlan, on_scene: Callable[[], None] | None = None) -> ShardResult:
        """Render ``plan``'s scenes and write them as one shard plus its sidecar. ``on_scene()`` is
        called after each scene. An OSError (full disk) leaves no temporary file."""
        cfg = self.cfg
        out = Path(cfg.out)
        sidecar_path(out / plan.relpath).unlink(missing_ok=True)  # a re-rendered shard: no stale entry survives a kill
        attrs = {
            "seed": cfg.seed,
            "render_config": self.cfg_dict,
            "category_names": self.sampler.category_names,
            "first_scene": plan.first_scene,
            **self.provenance.shard_attrs(),
        }
        stages: dict[str, float] = {}
        overlaps: list[float] = []
        writer = ShardWriter(
            out / plan.relpath,
            height=cfg.size,
            width=cfg.size,
            views=cfg.views,
            max_objects=cfg.objects.max_objects,
            attrs=attrs,
            compression=cfg.compression,
            expected_scenes=plan.num_scenes,
        )
        with writer:
            for index in plan.scenes:
                scene, stats = render_scene(cfg, self.sampler, self.renderer, index)
                t = time.perf_counter()
                writer.append(scene)
                stats["write"] = time.perf_counter() - t
                for k, v in stats.items():
                    stages[k] = stages.get(k, 0.0) + float(v)
                overlaps.extend(np.asarray(scene["overlap"]).tolist())
                if on_scene is not None:
                    on_scene()
            t = time.perf_counter()
        record_finished(out, writer.path, writer.root_attrs, writer.sha256)  # closed and renamed by the with block
        stages["write"] = stages.get("write", 0.0) + time.perf_counter() - t
        return ShardResult(plan.index, plan.relpath, writer.count, stages, overlaps)

    def _close_physics(self) -> None:
        if self.physics is not None:
            self.physics.close()
            self.physics = None

    def close(self) -> None:
        """Release the GL context and the physics client (idempotent)."""
        self.renderer.close()
        self._close_physics()

    def __enter__(self) -> "ShardWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["ShardWorker", "ShardResult"]
