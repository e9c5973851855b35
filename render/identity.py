"""The render identity of an output folder: one folder, one render.

A folder of shards belongs to the render that created it. Its ``identity.json`` (`identity_of`)
holds, as a JSON object:

* ``identity_version``: the version of this record's format (`IDENTITY_VERSION`);
* ``format_version``: the shard format version (`synthssl.dataset.schema.FORMAT_VERSION`);
* ``seed``, ``size``, ``views``: named on their own for a readable conflict message;
* ``shard_size``: the folder's shard plan (shard k holds scenes [k*shard_size, (k+1)*shard_size));
* ``render_id``, ``config_hash``, ``assets_sha256``: the render's `Provenance`, exactly as every
  shard of the folder records it in its attributes (`synthssl.render.provenance`).

The first render into a folder claims it by creating ``identity.json`` atomically and
exclusively (written to a temporary file, then ``os.link``, which fails when the name exists),
so of two renders that start at the same moment with different identities, exactly one
proceeds and the other is refused (`claim_folder`, :class:`FolderConflict`, exit 2). Renders
with the same identity -- array jobs, ``--resume`` -- share the folder.

`check_scene_count` refuses a render that plans fewer scenes than the folder already
holds: re-planning the last shard would drop the scenes beyond the new count.

A failed start claims nothing: `FolderClaim` records what readying the folder created (the
folder itself and its missing parents, ``identity.json``, the manifest and its lock), and
`release_folder` removes exactly that when the render fails or is interrupted before any
shard is in the folder, so the corrected command runs into the same ``out``. A folder that
holds a shard, a temporary file of another writer (a job of the same render that is writing
its first shard) or a claim older than this run is left alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthssl.dataset.errors import ShardFormatError
from synthssl.dataset.layout import shard_relpaths
from synthssl.dataset.manifest import LOCK_NAME, MANIFEST_NAME, tmp_files, tmp_suffix
from synthssl.dataset.schema import FORMAT_VERSION

from .config import RenderConfig
from .provenance import Provenance, provenance_of

IDENTITY_NAME = "identity.json"
#: The version of the ``identity.json`` format; a folder claimed under another version is refused.
IDENTITY_VERSION = 3
#: The identity's keys, in the order a conflict is reported (the hashes, covering all, last).
IDENTITY_KEYS = (
    "identity_version",
    "format_version",
    "seed",
    "size",
    "views",
    "shard_size",
    "assets_sha256",
    "config_hash",
    "render_id",
)


class FolderConflict(ShardFormatError):
    """The output folder holds another render (other identity, or more scenes than planned)."""


def identity_of(cfg: RenderConfig, provenance: Provenance | None = None) -> dict[str, Any]:
    """The identity of the render ``cfg`` describes (see the module docstring); ``provenance``:
    ``provenance_of(cfg)`` when the caller has computed it already."""
    p = provenance if provenance is not None else provenance_of(cfg)
    return {
        "identity_version": IDENTITY_VERSION,
        "format_version": FORMAT_VERSION,
        "seed": cfg.seed,
        "size": cfg.size,
        "views": cfg.views,
        "shard_size": cfg.shard_size,
        "assets_sha256": p.assets_sha256,
        "config_hash": p.config_hash,
        "render_id": p.render_id,
    }


def claim_folder(out: Path, identity: dict[str, Any]) -> bool:
    """Create ``out/identity.json`` exclusively, or check that it holds ``identity``.

    Returns True when this call created it. Raises FolderConflict naming the first differing
    key (in `IDENTITY_KEYS` order) when the folder belongs to another render.
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
            path, None, f"unreadable ({exc}); this folder's render identity is unknown; use another out=DIR"
        ) from None
    if not isinstance(theirs, dict):
        raise FolderConflict(
            path, None, "not a JSON object; this folder's render identity is unknown; use another out=DIR"
        )
    named_first = [k for k in IDENTITY_KEYS if k in identity or k in theirs]
    for key in named_first + sorted((set(identity) | set(theirs)) - set(IDENTITY_KEYS)):
        if theirs.get(key) != identity.get(key):
            raise FolderConflict(
                path,
                key,
                f"this folder holds a render with {key}={theirs.get(key)!r}, this run "
                f"has {identity.get(key)!r}; use another out=DIR (renders never mix in one folder)",
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
            f"scenes={cfg.scenes}: this folder already holds scenes up to "
            f"{held - 1} (in {name}); pass scenes={held} or more to keep them all, or use "
            f"another out=DIR (nothing was changed)",
        )


@dataclass(frozen=True)
class FolderClaim:
    """What readying the output folder ``out`` created, for `release_folder`."""

    out: Path
    created: tuple[Path, ...]
    """folders created (``out`` and its missing parents), deepest first."""
    claimed: bool
    """``identity.json`` was created by this run (the folder belonged to no render before)."""
    had: frozenset[str]
    """which of ``manifest.json`` and ``.manifest.lock`` existed before."""


def missing_folders(out: Path) -> tuple[Path, ...]:
    """``out`` and its ancestors that do not exist yet, deepest first (what ``mkdir -p out`` creates)."""
    created = []
    p = Path(os.path.abspath(out))
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    return tuple(created)


def release_folder(claim: FolderClaim) -> bool:
    """Undo ``claim`` when no shard is in its folder (module docstring). Returns True when released."""
    out = claim.out
    if not claim.claimed or not out.is_dir() or shard_relpaths(out) or tmp_files(out):
        return False
    for name in (MANIFEST_NAME, LOCK_NAME, IDENTITY_NAME):
        if name not in claim.had:
            (out / name).unlink(missing_ok=True)
    for folder in claim.created:
        try:
            folder.rmdir()
        except OSError:  # not empty (another process wrote into it): keep it and its parents
            break
    return True


__all__ = [
    "FolderClaim",
    "missing_folders",
    "release_folder",
    "IDENTITY_NAME",
    "IDENTITY_VERSION",
    "IDENTITY_KEYS",
    "FolderConflict",
    "identity_of",
    "claim_folder",
    "check_scene_count",
]
