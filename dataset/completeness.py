"""Does a render folder hold exactly the shards its ``manifest.json`` lists?

Two gaps are possible between a folder's manifest and its files (`folder_gaps`):

* a shard the manifest lists is *missing* (deleted, moved, lost in a copy): reading the folder
  would silently hold fewer scenes than it was rendered with. The reader refuses it
  (`missing_error`, naming the shard and the repair: the same ``render-scenes`` command with
  ``--resume``) unless it is told to read the rest (``allow_missing``), and then says how many
  scenes it skipped (`skipped_line`);
* a shard file on disk is *unlisted* (a run killed before its merge, array jobs not indexed
  yet, a folder without a manifest): its own sidecar or header describes it, so it is read, and
  the reader names it in one warning (`unlisted_line`) with the repair ``render-scenes index DIR``.

Nothing is lost either way: a missing shard stops the read unless explicitly skipped, an
unlisted one is read. ``render-scenes validate`` calls both INVALID.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import ShardFormatError
from .manifest import MANIFEST_NAME

#: Shards named in one message; the rest are counted.
NAMED = 3


@dataclass(frozen=True)
class FolderGaps:
    """The differences between the render folder ``root``'s manifest and its shard files."""

    root: Path
    missing: tuple[tuple[str, int], ...]
    """(relpath, scenes) of each shard the manifest lists that is not on disk, sorted by relpath;
    scenes is the entry's ``num_scenes`` (0 when the entry does not say)."""
    unlisted: tuple[str, ...]
    """relpaths of the shard files on disk the manifest does not list (all of them without a manifest)."""
    has_manifest: bool

    @property
    def missing_scenes(self) -> int:
        return sum(n for _, n in self.missing)


def folder_gaps(root: Path, names: Sequence[str], manifest: dict[str, Any] | None) -> FolderGaps:
    """The gaps between ``manifest`` (the parsed ``manifest.json`` of ``root``, None when absent)
    and ``names``, the relpaths of the shard files under ``root``."""
    entries = [e for e in (manifest or {}).get("shards", []) if isinstance(e, dict) and isinstance(e.get("file"), str)]
    listed = {e["file"]: e for e in entries}
    on_disk = set(names)
    missing = tuple(
        (name, int(e["num_scenes"]) if isinstance(e.get("num_scenes"), int) else 0)
        for name, e in sorted(listed.items())
        if name not in on_disk
    )
    unlisted = tuple(n for n in names if n not in listed)
    return FolderGaps(Path(root), missing, unlisted, manifest is not None)


def _named(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMED])
    return shown + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")


def missing_error(gaps: FolderGaps) -> ShardFormatError:
    """The refusal of a folder with missing shards: one line naming the first one and the repair."""
    first, scenes = gaps.missing[0]
    more = len(gaps.missing) - 1
    others = f"; {more} more listed shard(s) missing too ({_named([n for n, _ in gaps.missing[1:]])})" if more else ""
    return ShardFormatError(
        gaps.root / first,
        None,
        f"listed in {MANIFEST_NAME} ({scenes} scenes) but missing{others}; render it again with the same "
        f"render-scenes command plus --resume, or read the other shards with allow_missing "
        f"(train-ssl: data.allow_missing_shards=true)",
    )


def skipped_line(gaps: FolderGaps) -> str:
    """The warning of a read that skips ``gaps``' missing shards (``allow_missing``)."""
    return (
        f"{gaps.root}: skipping {gaps.missing_scenes} scenes of {len(gaps.missing)} shard(s) listed in "
        f"{MANIFEST_NAME} but missing ({_named([n for n, _ in gaps.missing])}; allow_missing); render them "
        f"again with the same render-scenes command plus --resume"
    )


def unlisted_line(gaps: FolderGaps) -> str:
    """The warning of a read that includes shards the folder's manifest does not list."""
    where = f"not listed in its {MANIFEST_NAME}" if gaps.has_manifest else f"and no {MANIFEST_NAME}"
    return (
        f"{gaps.root}: {len(gaps.unlisted)} shard file(s) {where} ({_named(list(gaps.unlisted))}); "
        f"read from their own records; list them with render-scenes index {gaps.root}"
    )


__all__ = ["FolderGaps", "folder_gaps", "missing_error", "skipped_line", "unlisted_line"]
