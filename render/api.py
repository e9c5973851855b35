"""The Python API of rendering: one scene into arrays in memory, or a whole folder of shards.

    from synthssl.render import render_scene, render_dataset

    scene = render_scene("demo", 0, size=32)           # dict of arrays, as shard-*.h5 holds scene 0
    summary = render_dataset("demo", out="data/shards", scenes=8, size=32)

``config`` is a `RenderConfig`, a nested dict, a YAML file or a shipped config name (``"demo"``),
or None for the defaults; overrides follow (`synthssl.core.config_input`): a list of
``"key=value"`` strings or a ``{dotted key: value}`` dict, then keyword arguments
(``camera__overlap=[0.4, 0.8]`` for ``camera.overlap``). Bad keys or values raise `ConfigError`
naming the key.

`render_scene` builds a scene sampler, a physics client and a GL renderer for one call and
closes them. To render many scenes of one config in a loop, hold a `SceneSource`: it keeps
them between calls, so each scene costs what the CLI's worker pays per scene::

    with SceneSource("demo", size=32) as source:
        scenes = [source.render(i) for i in range(8)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthssl.core.config import ConfigError
from synthssl.core.config_input import Overrides, config_tree
from synthssl.dataset.schema import ALL_FIELDS

from .config import SHIPPED_CONFIGS, RenderConfig, config_from_dict

__all__ = ["resolve_render_config", "SceneSource", "render_scene", "render_dataset"]


def resolve_render_config(config: Any = None, overrides: Overrides = None, **keywords: Any) -> RenderConfig:
    """The checked `RenderConfig` of ``config`` with ``overrides`` and ``keywords`` (see the module docstring)."""
    tree, source = config_tree(config, SHIPPED_CONFIGS, overrides, keywords)
    try:
        return config_from_dict(tree)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (config: {source or 'the defaults'})") from None


class SceneSource:
    """Scenes of one render config, rendered in memory one index at a time.

    Holds the scene sampler, the physics client (when the config enables physics and pybullet
    imports) and one GL renderer (one context) until `close` (or the end of a ``with`` block).
    ``config``, ``overrides`` and ``keywords`` as in `render_scene`.
    """

    def __init__(self, config: Any = None, overrides: Overrides = None, **keywords: Any):
        from .physics import PhysicsWorld, physics_available, physics_notice
        from .renderer import SceneRenderer
        from .scene import SceneSampler

        self.config = resolve_render_config(config, overrides, **keywords)
        cfg = self.config
        self._physics = None
        if cfg.physics.pybullet:
            if physics_available():
                self._physics = PhysicsWorld()
            else:
                physics_notice()
        self._renderer = None
        try:
            self._sampler = SceneSampler(cfg, self._physics)
            self._renderer = SceneRenderer(cfg.size, cfg.size, cfg.backend, cfg.appearance.antialias_mode)
        except BaseException:
            self.close()
            raise

    @property
    def category_names(self) -> list[str]:
        """The category table of the scenes (``category`` ids index it), as shards store it."""
        return list(self._sampler.category_names)

    @property
    def physics(self) -> bool:
        """Whether objects are placed by the physics simulation (enabled and pybullet imports)."""
        return self._physics is not None

    def render(self, index: int) -> dict[str, Any]:
        """Scene ``index``: {field: array} as `render_scene` returns it."""
        if int(index) < 0:
            raise ConfigError(f"index: expected a scene index >= 0, got {index}")
        if self._renderer is None:
            raise ValueError("this SceneSource is closed")
        from .scene_maps import render_scene as render_maps

        scene, _ = render_maps(self.config, self._sampler, self._renderer, int(index))
        out: dict[str, Any] = {}
        for name, spec in ALL_FIELDS.items():
            value = scene[name]
            out[name] = value if spec.dtype is None else np.asarray(value).astype(spec.dtype, copy=False)
        return out

    def close(self) -> None:
        """Release the GL context and the physics client (idempotent)."""
        renderer, physics = self._renderer, self._physics
        self._renderer = self._physics = None
        if renderer is not None:
            renderer.close()
        if physics is not None:
            physics.close()

    def __enter__(self) -> "SceneSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    with SceneSource(config, overrides, **keywords) as source:
        return source.render(index)


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
