"""Which shards can be read as one data set, and which render each belongs to.

A shard's *compat* record (the ``compat`` of its manifest entry, see docs/shard-format.md)
holds ``format_version``, ``height``, ``width``, ``views``, ``categories_sha256``,
``assets_sha256``, ``package_version`` and ``config_hash``. Shards read together must agree on
every key of `MUST_MATCH`: the same category ids must mean the same names, and the same asset
set must have drawn them (a wheel install without ``assets/`` draws from fewer categories than
a checkout). ``package_version`` and ``config_hash`` may differ (renders with other seeds).

The render's provenance (``render_id``, ``config_hash``, ``assets_sha256``) is read from the
shard's attributes as the renderer wrote them (`synthssl.render.provenance` computes them);
nothing here derives them again. A shard without provenance attributes (written by another
writer than ``render-scenes``) reads as render id "" and asset hash "" (unknown: compared only
between shards that record one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .errors import MixedShardsError
from .schema import categories_sha256

#: Keys of the compat record on which all shards read together must agree.
MUST_MATCH = ("format_version", "height", "width", "views", "categories_sha256", "assets_sha256")
#: Keys of a manifest entry's ``compat``.
COMPAT_KEYS = MUST_MATCH + ("package_version", "config_hash")
#: Keys of a manifest entry (and sidecar) besides ``compat``.
ENTRY_KEYS = ("file", "num_scenes", "first_scene", "bytes", "mtime_ns", "sha256", "render_id")
#: Keys whose value "" means "not recorded" (a shard without provenance): compared only when both are known.
_OPTIONAL = ("assets_sha256",)

_HINTS = {
    "format_version": "re-render the shards of the other format version with this synthssl",
    "height": "render every folder at the same image size",
    "width": "render every folder at the same image size",
    "views": "render every folder with the same number of views",
    "categories_sha256": "they were rendered with different category tables (e.g. a wheel install and a "
    "checkout); re-render one of them with the same install",
    "assets_sha256": "they were rendered from different asset sets (e.g. a wheel install and a checkout); "
    "re-render one of them with the same install",
}


def compat_from_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The compat record of a shard from its root attributes: h5py's (bytes decoded here), a
    reader's decoded ones, or the writer's own (``category_names`` a list)."""
    attrs = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in attrs.items()}
    names = attrs["category_names"]
    return {
        "format_version": int(attrs.get("format_version", -1)),
        "height": int(attrs["height"]),
        "width": int(attrs["width"]),
        "views": int(attrs["views"]),
        "categories_sha256": categories_sha256(json.loads(names) if isinstance(names, str) else list(names)),
        "assets_sha256": str(attrs.get("assets_sha256", "")),
        "package_version": str(attrs.get("package_version", "")),
        "config_hash": str(attrs.get("config_hash", "")),
    }


def render_id_from_attrs(attrs: Mapping[str, Any]) -> str:
    """The shard's ``render_id`` attribute, "" for a shard without one."""
    value = attrs.get("render_id", "")
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def is_complete_entry(entry: Any) -> bool:
    """True when ``entry`` (a manifest entry or sidecar, parsed JSON) holds every key of the entry
    format (`ENTRY_KEYS`, and `COMPAT_KEYS` in its ``compat``; docs/shard-format.md)."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("render_id"), str):
        return False
    compat = entry.get("compat")
    return isinstance(compat, Mapping) and all(k in compat for k in COMPAT_KEYS) and all(k in entry for k in ENTRY_KEYS)


def _short(value: Any) -> str:
    text = str(value) if value != "" else "(not recorded)"
    return text[:12] + "..." if len(text) > 15 else text


def conflict(key: str, a: Any, path_a: str | Path, b: Any, path_b: str | Path) -> MixedShardsError:
    """The one-line error for shards ``path_a`` and ``path_b`` that differ in compat ``key``."""
    return MixedShardsError(
        path_a,
        f"compat '{key}'",
        f"{_short(a)} here but {_short(b)} in {path_b}: these shards "
        f"cannot be read together; {_HINTS.get(key, 'they differ')}",
    )


class CompatChecker:
    """Feed it every shard's compat record; `add` raises MixedShardsError naming the first shard
    seen with each value and the first shard that disagrees."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[Any, str]] = {}  # key -> (value, the first shard having it)
        self._last: tuple | None = None

    def add(self, path: str | Path, compat: Mapping[str, Any]) -> None:
        """Record shard ``path``'s compat (unchanged records cost one tuple comparison)."""
        values = tuple(compat.get(k, "") for k in MUST_MATCH)
        if values == self._last:
            return
        for key, value in zip(MUST_MATCH, values):
            if key in _OPTIONAL and value == "":
                continue
            seen = self.first.get(key)
            if seen is None:
                self.first[key] = (value, str(path))
            elif seen[0] != value:
                raise conflict(key, seen[0], seen[1], value, path)
        self._last = values

    def agreed(self) -> dict[str, Any]:
        """The compat values every shard added so far shares ("" for keys none recorded)."""
        return {k: self.first[k][0] if k in self.first else "" for k in MUST_MATCH}


__all__ = [
    "MUST_MATCH",
    "COMPAT_KEYS",
    "ENTRY_KEYS",
    "compat_from_attrs",
    "render_id_from_attrs",
    "is_complete_entry",
    "conflict",
    "CompatChecker",
]
