"""synthssl.render: procedural 3D scenes rendered into view-pair shards (``render-scenes``).

The Python API (docs/api.md), imported on first use so that ``import synthssl.render`` stays light:
``render_scene(config, index, ...)`` (one scene's arrays in memory), ``render_dataset(config, ...)``
(a folder of shards, as the command writes), ``load_config`` and ``RenderConfig``.

Modules (scene description, assets and renderer are separate, as in Kubric):
``config`` (RenderConfig), ``shapes`` / ``assets`` (meshes and their categories),
``textures`` / ``photos`` / ``appearance`` (materials, photo textures, lights), ``physics`` (pybullet settling),
``scene`` (the GL-free scene description), ``cameras`` (view sampling, OpenCV
convention), ``gl_compat`` (the GL context through pyrender's platforms, every workaround),
``mesh_buffers`` / ``shaders`` / ``renderer`` (id + colour passes of one vertex buffer, exact maps),
``scene_maps`` (one scene -> shard dict),
``provenance`` (what a render is: config hash, render id, asset set), ``preflight`` (the checks
before the folder is touched), ``identity`` (one folder, one render; a failed start releases
it), ``resume`` (the shard plan, what is finished), ``shard_worker`` (one process writing
shards), ``worker_pool`` (spawned workers, dead-worker diagnosis), ``interrupt`` (Ctrl-C),
``pipeline`` (the orchestration), ``run_summary`` (what a run did), ``preview`` (contact
sheet), ``api`` (the Python API), ``stream`` (a render worker of a training stream,
``python -m synthssl.render.stream``), ``cli``. Nothing here imports torch; pyrender is imported
only through ``gl_compat``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it.
_EXPORTS = {
    "render_scene": "api",
    "SceneSource": "api",
    "render_dataset": "api",
    "resolve_render_config": "api",
    "RenderConfig": "config",
    "load_config": "config",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
