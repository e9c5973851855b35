"""Provenance of a render: what every shard records about where its scenes came from.

* ``config_hash``: sha256 (hex) of the canonical content config, i.e. ``render_config``
  without the keys that do not change what is rendered (`RENDER_ID_EXCLUDED`: output folder,
  scene count, workers, array-job split, backend, shard size, compression) as
  ``json.dumps(..., sort_keys=True)``. The seed is included.
* ``render_id``: its first 16 hex characters. Every shard of one render has the same id,
  whichever machine of an array job wrote it; with (render_id, scene_id) a scene is unique
  across renders, so folders rendered with different seeds can be trained on together.
* ``asset_names``: the mesh assets in use, ``source/category/file`` in discovery order, and
  ``assets_sha256``: sha256 over those names and every file's bytes. A wheel install without
  the bundled ``assets/`` thus differs from a checkout. When no asset objects are drawn
  (``objects.source_weights.asset == 0``) the list is empty.
* ``package_version``: written by the shard writer itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .assets import discover_assets
from .config import ConfigError, RenderConfig
from .identity import NON_CONTENT_KEYS

#: Config keys left out of ``config_hash``/``render_id``.
RENDER_ID_EXCLUDED = (*NON_CONTENT_KEYS, "shard_size")  # NON_CONTENT_KEYS holds compression


def canonical_content(cfg_dict: dict) -> str:
    """The content config as canonical JSON (sorted keys), without `RENDER_ID_EXCLUDED`."""
    return json.dumps({k: v for k, v in cfg_dict.items() if k not in RENDER_ID_EXCLUDED}, sort_keys=True)


def config_hash(cfg: RenderConfig) -> str:
    """sha256 hex of `canonical_content`."""
    return hashlib.sha256(canonical_content(cfg.to_dict()).encode("utf-8")).hexdigest()


def asset_set(cfg: RenderConfig) -> tuple[list[str], str]:
    """(asset names, sha256 over names and file bytes) of the assets ``cfg`` draws from;
    ConfigError when an asset folder is missing or empty."""
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
    return names, h.hexdigest()


def render_provenance(cfg: RenderConfig) -> dict[str, str | list[str]]:
    """The provenance root attributes of ``cfg``'s shards (see the module docstring)."""
    digest = config_hash(cfg)
    names, assets = asset_set(cfg)
    return {"render_id": digest[:16], "config_hash": digest, "asset_names": names, "assets_sha256": assets}


__all__ = ["RENDER_ID_EXCLUDED", "canonical_content", "config_hash", "asset_set", "render_provenance"]
