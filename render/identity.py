"""The render identity of an output folder: one folder, one render.

A folder of shards belongs to the render that created it: its seed, image size,
views, asset set, shard format version and the hash of every content-defining config
value (`identity_of`). The first render into a folder claims it by creating
``identity.json`` atomically and exclusively (written to a temporary file, then
``os.link``, which fails when the name exists), so of two renders that start at the
same moment with different identities, exactly one proceeds and the other is refused
(`claim_folder`, :class:`FolderConflict`, exit 2). Renders with the same identity --
array jobs, ``--resume`` -- share the folder.

`check_scene_count` refuses a render that plans fewer scenes than the folder already
holds: re-planning the last shard would drop the scenes beyond the new count.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from synthssl.dataset.errors import ShardFormatError
from synthssl.dataset.manifest import tmp_suffix
from synthssl.dataset.schema import FORMAT_VERSION

from .assets import discover_assets
from .config import ConfigError, RenderConfig

IDENTITY_NAME = "identity.json"
#: The identity's keys, in the order a conflict is reported (the config hash, covering all, last).
IDENTITY_KEYS = ("seed", "size", "views", "format_version", "assets_sha256", "config_sha256")
#: 2: ``compression`` left the config hash (it does not change what is rendered).
IDENTITY_VERSION = 2
#: Config keys that do not change what is rendered (ignored when matching a folder's render). Compression
#: is one: a folder begun with lzf (the previous default) resumes with gzip, each shard naming its filter.
NON_CONTENT_KEYS = ("out", "workers", "shard_index", "num_shards", "backend", "scenes", "compression")


class FolderConflict(ShardFormatError):
    """The output folder holds another render (other identity, or more scenes than planned)."""


def content_config(cfg_dict: dict) -> dict:
    """The config values that define what is rendered."""
    return {k: v for k, v in cfg_dict.items() if k not in NON_CONTENT_KEYS}


def asset_fingerprint(cfg: RenderConfig) -> str:
    """SHA-256 over the asset set (source, category, file name, size of every mesh); ConfigError when
    an asset folder is missing or holds no meshes."""
    o = cfg.objects
    try:
        entries = discover_assets(o.asset_dirs, o.bundled_assets, o.pybullet_assets)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.source}\0{e.category}\0{Path(e.path).name}\0{os.path.getsize(e.path)}\n".encode())
    return h.hexdigest()


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def identity_of(cfg: RenderConfig) -> dict[str, Any]:
    """The identity of the render ``cfg`` describes (see the module docstring)."""
    return {
        "seed": cfg.seed,
        "size": cfg.size,
        "views": cfg.views,
        "format_version": FORMAT_VERSION,
        "assets_sha256": asset_fingerprint(cfg) if cfg.objects.source_weights.get("asset", 0) > 0 else None,
        "config_sha256": _sha256_json(content_config(cfg.to_dict())),
        "identity_version": IDENTITY_VERSION,
    }


def legacy_config_hashes(cfg: RenderConfig) -> set[str]:
    """The ``config_sha256`` an ``identity.json`` written before `IDENTITY_VERSION` 2 holds for the same
    render: its hash still covered ``compression``, whose default then was ``lzf``."""
    content = content_config(cfg.to_dict())
    return {_sha256_json({**content, "compression": c}) for c in ("lzf", cfg.compression)}


def claim_folder(out: Path, identity: dict[str, Any], legacy_hashes: set[str] = frozenset()) -> bool:
    """Create ``out/identity.json`` exclusively, or check that it holds ``identity``.

    ``legacy_hashes``: config hashes that an identity written before `IDENTITY_VERSION` 2 may hold
    for this same render (`legacy_config_hashes`). Returns True when this call created it.
    Raises FolderConflict naming the first differing key when the folder belongs to another render.
    """
    path = out / IDENTITY_NAME
    tmp = out / f"{IDENTITY_NAME}{tmp_suffix()}"
    tmp.write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n")
    try:
        os.link(tmp, path)  # atomic and exclusive: fails if another render claimed the folder first
        return True
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    try:
        theirs = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FolderConflict(
            path, None, f"unreadable ({exc}); this folder's render identity is unknown; use another --out"
        ) from None
    if "identity_version" not in theirs and theirs.get("config_sha256") in legacy_hashes:
        theirs = {**theirs, "config_sha256": identity["config_sha256"], "identity_version": IDENTITY_VERSION}
    named_first = [k for k in IDENTITY_KEYS if k in identity or k in theirs]
    for key in named_first + sorted((set(identity) | set(theirs)) - set(IDENTITY_KEYS)):
        if theirs.get(key) != identity.get(key):
            raise FolderConflict(
                path,
                key,
                f"this folder holds a render with {key}={theirs.get(key)!r}, this run "
                f"has {identity.get(key)!r}; use another --out (renders never mix in one folder)",
            )
    return False


def check_scene_count(out: Path, cfg: RenderConfig, shard_scenes: dict[str, tuple[int, int]]) -> None:
    """Refuse a plan with fewer scenes than the folder's shards hold (``{file: (first, count)}``)."""
    if not shard_scenes:
        return
    name, (first, count) = max(shard_scenes.items(), key=lambda kv: kv[1][0] + kv[1][1])
    held = first + count
    if held > cfg.scenes:
        raise FolderConflict(
            out,
            "scenes",
            f"--scenes {cfg.scenes}: this folder already holds scenes up to "
            f"{held - 1} (in {name}); pass --scenes {held} or more to keep them all, or use "
            f"another --out (nothing was changed)",
        )


__all__ = [
    "IDENTITY_NAME",
    "NON_CONTENT_KEYS",
    "FolderConflict",
    "content_config",
    "identity_of",
    "claim_folder",
    "legacy_config_hashes",
    "check_scene_count",
    "asset_fingerprint",
]
