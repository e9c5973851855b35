"""What a render is, computed in one place: its content config, config hash, render id and asset set.

A render is defined by its *content config*: ``render_config`` without the keys that do not
change what is rendered (`NON_CONTENT_KEYS`: the output folder, the scene count, the workers,
the array-job split, the GL backend, the shard size and the compression). From it and the
asset files:

* ``config_hash``: sha256 (hex) of the content config and the `RENDER_VERSION` as
  ``json.dumps(..., sort_keys=True)`` (`content_json`); the seed is included. A renderer that
  draws other scenes from the same config has another version, hence another hash: its scenes
  never mix with older ones in one folder, and have their own ``render_id``.
* ``render_id``: its first 16 hex characters. Every shard of one render has the same id,
  whichever machine of an array job wrote it; with (render_id, scene_id) a scene is unique
  across renders, so folders rendered with different seeds can be trained on together.
* ``asset_names``: the mesh assets in use, ``source/category/file`` in discovery order, and
  ``assets_sha256``: sha256 over those names and every file's bytes, so a wheel install
  without the bundled ``assets/`` differs from a checkout. When no asset objects are drawn
  (``objects.source_weights.asset == 0``) the list is empty and the hash is that of no bytes.

`provenance_of` computes a `Provenance` once per render. The shards' provenance attributes
(`Provenance.shard_attrs`, docs/shard-format.md) and the folder's ``identity.json``
(`synthssl.render.identity`) are both written from it, so they report the same config hash and
asset hash. ``package_version`` is written by the shard writer itself.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assets import discover_assets
from .config import ConfigError, RenderConfig

#: Config keys that do not change what is rendered: left out of the content config, hence of
#: ``config_hash`` and ``render_id`` (scene i of a render is the same array whatever they are).
NON_CONTENT_KEYS = ("out", "scenes", "workers", "shard_index", "num_shards", "backend", "shard_size", "compression")
#: Hex characters of ``config_hash`` that make the ``render_id``.
RENDER_ID_LENGTH = 16
#: The version of what a content config renders to, hashed into ``config_hash``; raised whenever
#: the same config renders other scenes. 2: collision hulls keep up to 512 vertices and no settled
#: object dips below the floor (`synthssl.render.physics.lift_onto_floor`). 3: objects rest on stable
#: hull faces without a simulation and the colour pass is anti-aliased at instance edges by default.
#: 4: synthssl's own GL passes (`synthssl.render.renderer`): depth interpolated in the id pass rather
#: than read from a 24-bit depth buffer, mipmaps made on the CPU, objects drawn before floor and walls.
RENDER_VERSION = 4


#: Keys added to the render config since `RENDER_VERSION` was last raised, each with the value that
#: renders what configs rendered before the key existed. At that value a key is left out of the
#: content config, so that a new option keeps the ``config_hash`` (and the resumability) of every
#: earlier render; at any other value it is hashed like every key.
ADDED_KEYS: dict[tuple[str, str], Any] = {}


def content_config(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    """The values of a config dict (``RenderConfig.to_dict()``) that define what is rendered."""
    content = {k: v for k, v in cfg_dict.items() if k not in NON_CONTENT_KEYS}
    for (section, key), old in ADDED_KEYS.items():
        if section in content and content[section].get(key, old) == old:
            content[section] = {k: v for k, v in content[section].items() if k != key}
    return content


def content_json(cfg_dict: dict[str, Any]) -> str:
    """`content_config` and ``render_version`` (`RENDER_VERSION`) as canonical JSON (sorted keys):
    the text ``config_hash`` hashes."""
    return json.dumps({**content_config(cfg_dict), "render_version": RENDER_VERSION}, sort_keys=True)


def asset_set(cfg: RenderConfig) -> tuple[tuple[str, ...], str]:
    """(asset names, sha256 hex over names and file bytes) of the assets ``cfg`` draws from;
    ConfigError when an asset folder is missing or holds no meshes."""
    o = cfg.objects
    names: list[str] = []
    h = hashlib.sha256()
    if o.source_weights.get("asset", 0) > 0:
        try:
            entries = discover_assets(o.asset_dirs, o.bundled_assets, o.pybullet_assets)
        except FileNotFoundError as exc:
            raise ConfigError(str(exc)) from None
        for e in entries:
            name = f"{e.source}/{e.category}/{Path(e.path).name}"
            names.append(name)
            h.update(name.encode("utf-8") + b"\0")
            h.update(Path(e.path).read_bytes())
            h.update(b"\n")
    return tuple(names), h.hexdigest()


@dataclass(frozen=True)
class Provenance:
    """What one render is (see the module docstring); picklable, so spawned workers receive it."""

    config_hash: str
    """64 hex: sha256 of the content config."""
    asset_names: tuple[str, ...]
    """``source/category/file`` of every mesh asset in use, in discovery order."""
    assets_sha256: str
    """64 hex: sha256 over the asset names and their files' bytes."""

    @property
    def render_id(self) -> str:
        """16 hex: the first characters of ``config_hash``."""
        return self.config_hash[:RENDER_ID_LENGTH]

    def shard_attrs(self) -> dict[str, str | list[str]]:
        """The provenance root attributes of every shard of this render (docs/shard-format.md)."""
        return {
            "render_id": self.render_id,
            "config_hash": self.config_hash,
            "asset_names": list(self.asset_names),
            "assets_sha256": self.assets_sha256,
        }


def provenance_of(cfg: RenderConfig) -> Provenance:
    """The `Provenance` of the render ``cfg`` describes (reads every asset file once)."""
    names, assets = asset_set(cfg)
    digest = hashlib.sha256(content_json(cfg.to_dict()).encode("utf-8")).hexdigest()
    return Provenance(config_hash=digest, asset_names=names, assets_sha256=assets)


__all__ = [
    "NON_CONTENT_KEYS",
    "RENDER_ID_LENGTH",
    "RENDER_VERSION",
    "Provenance",
    "provenance_of",
    "content_config",
    "content_json",
    "asset_set",
]
