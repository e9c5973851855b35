"""The Python API of rendering: one scene into arrays in memory, or a whole folder of shards.

    from synthssl.render import render_scene, render_dataset

    scene = render_scene("demo", 0, size=32)           # dict of arrays, as shard-*.h5 holds scene 0
    summary = render_dataset("demo", out="data/shards", scenes=8, size=32)

``config`` is a `RenderConfig`, a nested dict, a YAML file or a shipped config name (``"demo"``),
or None for the defaults; overrides follow (`synthssl.core.config_input`): a list of
``"key=value"`` strings or a ``{dotted key: value}`` dict, then keyword arguments
(``camera__overlap=[0.4, 0.8]`` for ``camera.overlap``). Bad keys or values raise `ConfigError`
naming the key.

`render_scene` renders in this process and keeps its scene sampler, physics client and GL
renderer between calls (one of each, rebuilt when a call needs another image size, backend or
scene content), so rendering scenes in a loop costs what the CLI's worker pays per scene.
"""

from __future__ import annotations

import atexit
import json
from typing import Any

import numpy as np

from synthssl.core.config import ConfigError
from synthssl.core.config_input import Overrides, config_tree
from synthssl.dataset.schema import ALL_FIELDS

from .config import SHIPPED_CONFIGS, RenderConfig, config_from_dict

__all__ = ["resolve_render_config", "render_scene", "render_dataset", "close_scene_tools"]

#: One scene sampler + physics client + GL renderer, reused across `render_scene` calls.
_cache: dict[str, Any] = {}


def resolve_render_config(config: Any = None, overrides: Overrides = None, **keywords: Any) -> RenderConfig:
    """The checked `RenderConfig` of ``config`` with ``overrides`` and ``keywords`` (see the module docstring)."""
    tree, source = config_tree(config, SHIPPED_CONFIGS, overrides, keywords)
    try:
        return config_from_dict(tree)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (config: {source or 'the defaults'})") from None


def close_scene_tools() -> None:
    """Close the GL renderer and the physics client `render_scene` keeps (also run at exit, while the
    interpreter can still tear GL down quietly); the next call builds them again."""
    renderer, physics = _cache.pop("renderer", None), _cache.pop("physics", None)
    _cache.clear()
    if renderer is not None:
        renderer.close()
    if physics is not None:
        physics.close()


atexit.register(close_scene_tools)


def _scene_tools(cfg: RenderConfig):
    """(sampler, renderer) for ``cfg``, built once and kept while the content and image settings stay the same."""
    from .physics import PhysicsWorld, physics_available, physics_notice
    from .renderer import SceneRenderer
    from .scene import SceneSampler

    content = json.dumps({k: v for k, v in cfg.to_dict().items() if k != "out"}, sort_keys=True)
    if _cache.get("content") != content:
        if _cache.get("physics") is not None:
            _cache["physics"].close()
        physics = None
        if cfg.physics.enabled:
            if physics_available():
                physics = PhysicsWorld()
            else:
                physics_notice()
        _cache.update(content=content, physics=physics, sampler=SceneSampler(cfg, physics))
    key = (cfg.size, cfg.backend, cfg.appearance.antialias)
    if _cache.get("renderer_key") != key:
        if _cache.get("renderer") is not None:
            _cache["renderer"].close()
        _cache["renderer"] = None  # a failed start (no GL backend) leaves nothing half-built behind
        _cache["renderer"] = SceneRenderer(cfg.size, cfg.size, cfg.backend, cfg.appearance.antialias)
        _cache["renderer_key"] = key
    return _cache["sampler"], _cache["renderer"]


def render_scene(config: Any = None, index: int = 0, overrides: Overrides = None, **keywords: Any) -> dict[str, Any]:
    """Scene ``index`` of ``config``'s seed, rendered in memory: the arrays shard-*.h5 holds for it.

    Returns {field: value} for every field of `synthssl.dataset.schema.ALL_FIELDS`, with the
    schema's dtypes and per-scene shapes (V = ``views``, H = W = ``size``, M =
    ``objects.max_objects``): ``rgb`` uint8 [V,H,W,3], ``depth`` float32 [V,H,W] (metres, 0 = no
    surface), ``normal`` float16 [V,H,W,3], ``instance`` / ``category`` uint16 [V,H,W],
    ``contour`` uint8 [V,H,W], ``intrinsics`` float32 [V,3,3], ``cam_to_world`` float32
    [V,4,4], ``scene_id`` int64, ``overlap`` float32 [V-1], the ``object_*`` arrays [M,...],
    and ``objects_json`` as a str (what `Shard.read_scene` returns). Scene ``index`` equals
    scene ``index`` of ``render-scenes`` with the same content config, whatever ``out``,
    ``workers`` or ``shard_size``; no file is written (``out`` is ignored).
    """
    if int(index) < 0:
        raise ConfigError(f"index: expected a scene index >= 0, got {index}")
    cfg = resolve_render_config(config, overrides, **keywords)
    from .scene_maps import render_scene as render_maps

    sampler, renderer = _scene_tools(cfg)
    scene, _ = render_maps(cfg, sampler, renderer, int(index))
    out: dict[str, Any] = {}
    for name, spec in ALL_FIELDS.items():
        value = scene[name]
        out[name] = value if spec.dtype is None else np.asarray(value).astype(spec.dtype, copy=False)
    return out


def render_dataset(
    config: Any = None,
    overrides: Overrides = None,
    *,
    resume: bool = False,
    deep: bool = False,
    progress: bool = True,
    **keywords: Any,
):
    """Render ``config``'s scenes into the folder ``out`` as ``render-scenes`` does; returns its `RunSummary`.

    The same shards, sidecars, ``manifest.json`` and ``identity.json`` as the command writes
    (scene i of seed s is the same array whichever way it is rendered). ``resume`` skips
    finished shards after checking them (every scene and checksum with ``deep``); ``progress``
    prints a bar on a terminal, else a line per shard. ``workers > 1`` renders in spawned
    processes: call it under ``if __name__ == "__main__":`` in a script.
    """
    cfg = resolve_render_config(config, overrides, **keywords)
    if not cfg.out:
        raise ConfigError("out: required; give out=DIR (the folder the shards are written to)")
    from .pipeline import render_dataset as render_folder

    return render_folder(cfg, resume=resume, progress=progress, deep=deep)
