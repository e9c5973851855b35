"""The scene index of many render folders, built from their manifests, in compact NumPy arrays.

`build_index(paths)` lists the shard files under each folder (no shard is opened) and takes
each shard's scene count, first scene, render id and compat record from the folder's
``manifest.json`` (see docs/shard-format.md), or from the shard's sidecar record when the
manifest does not list it yet. Only a shard described by neither (killed between its rename and
its sidecar, before any merge) or whose entry's byte size no longer matches the file is opened,
one at a time and closed again. Every shard must be compatible with every other
(`compat.CompatChecker`), and no (render id, scene id) may appear twice.

A folder given whole is compared with its manifest (`synthssl.dataset.completeness`): a shard
the manifest lists that is gone raises `ShardFormatError` naming it, unless ``allow_missing``
(then its scenes are skipped, counted in `ShardIndex.missing` and named in one warning); shard
files the manifest does not list are read and named in one warning (`ShardIndex.unlisted`).
A ``.h5`` file given alone stands for itself: the rest of its folder's manifest is not checked.

The result holds a few arrays per scene and per shard and no per-scene Python objects, so a
DataLoader worker forked from the process that built it shares it instead of copying it
(about 8 bytes per scene plus about 30 per shard).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .compat import CompatChecker, compat_from_attrs, is_complete_entry, render_id_from_attrs
from .completeness import folder_gaps, missing_error, skipped_line, unlisted_line
from .errors import MixedShardsError, ShardFormatError
from .layout import find_shard_roots
from .manifest import read_manifest, read_sidecar
from .schema import FORMAT_VERSION, categories_sha256
from .shard import Shard

log = logging.getLogger("synthssl.dataset")


def _smallest_uint(max_value: int) -> np.dtype:
    return np.dtype(np.uint16) if max_value < (1 << 16) else np.dtype(np.uint32)


@dataclass
class ShardIndex:
    """Every scene of a set of shards, sorted by (render id, scene id).

    Per scene ``i`` (length N): ``scene_shard[i]`` (its shard), ``scene_local[i]`` (its
    position in that shard), ``scene_id[i]`` (its scene id within its render).
    Per shard ``k`` (length S): ``shard_root[k]`` (index into ``roots``), ``shard_relpath[k]``
    (bytes: its relpath in that root, `synthssl.dataset.layout`), ``shard_render[k]`` (index into ``render_ids``),
    ``shard_scenes[k]`` (its scene count). ``compat`` is the compat record all shards share
    (see `synthssl.dataset.compat`), ``category_names`` its category table. ``opened`` counts
    the shards that had to be opened to build the index (0 when every folder has a current
    manifest). ``missing``: (file, scenes) of each shard a manifest lists that is gone, skipped
    with ``allow_missing``; ``unlisted``: the shard files read that their folder's manifest does
    not list.
    """

    roots: list[Path]
    shard_root: np.ndarray
    shard_relpath: np.ndarray
    shard_render: np.ndarray
    shard_scenes: np.ndarray
    render_ids: list[str]
    scene_shard: np.ndarray
    scene_local: np.ndarray
    scene_id: np.ndarray
    compat: dict[str, Any]
    category_names: list[str]
    opened: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    missing: list[tuple[Path, int]] = field(default_factory=list)
    unlisted: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.scene_id.shape[0])

    @property
    def num_shards(self) -> int:
        return int(self.shard_relpath.shape[0])

    def shard_path(self, k: int) -> Path:
        """The file of shard ``k``."""
        return self.roots[int(self.shard_root[k])] / self.shard_relpath[k].decode("utf-8")

    def render_of_shard(self, k: int) -> str:
        return self.render_ids[int(self.shard_render[k])]

    def select(self, keep: np.ndarray) -> "ShardIndex":
        """The same index restricted to the scenes where bool mask ``keep`` [N] is true."""
        return ShardIndex(
            self.roots,
            self.shard_root,
            self.shard_relpath,
            self.shard_render,
            self.shard_scenes,
            self.render_ids,
            self.scene_shard[keep],
            self.scene_local[keep],
            self.scene_id[keep],
            self.compat,
            self.category_names,
            self.opened,
            dict(self.sources),
            list(self.missing),
            list(self.unlisted),
        )

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays (per-scene and per-shard)."""
        return sum(
            int(a.nbytes)
            for a in (
                self.shard_root,
                self.shard_relpath,
                self.shard_render,
                self.shard_scenes,
                self.scene_shard,
                self.scene_local,
                self.scene_id,
            )
        )


class _Builder:
    """Collects one record per shard, then turns them into a `ShardIndex`."""

    def __init__(self) -> None:
        self.roots: list[Path] = []
        self.root_of: list[int] = []
        self.names: list[str] = []
        self.render_of: list[int] = []
        self.counts: list[int] = []
        self.firsts: list[int] = []
        self.explicit: dict[int, np.ndarray] = {}  # shard -> its file's scene ids, when not first_scene + 0..n-1
        self.render_ids: dict[str, int] = {}
        self.tables: dict[str, list[str]] = {}  # categories_sha256 -> names
        self.checker = CompatChecker()
        self.sources = {"manifest": 0, "sidecar": 0, "opened": 0}
        self.missing: list[tuple[Path, int]] = []
        self.unlisted: list[Path] = []

    def add(self, root: int, name: str, entry: dict[str, Any], scene_ids: np.ndarray | None = None) -> None:
        path = self.roots[root] / name
        self.checker.add(path, entry["compat"])
        k = len(self.names)
        self.root_of.append(root)
        self.names.append(name)
        self.render_of.append(self.render_ids.setdefault(entry["render_id"], len(self.render_ids)))
        self.counts.append(int(entry["num_scenes"]))
        self.firsts.append(int(entry["first_scene"]))
        if scene_ids is not None and not np.array_equal(scene_ids, np.arange(scene_ids.size) + self.firsts[-1]):
            self.explicit[k] = scene_ids

    def add_root(self, root: Path, names: list[str], whole: bool = False, allow_missing: bool = False) -> None:
        """Add the shards ``names`` of the render folder ``root``; ``whole``: ``names`` are all of its
        shards, so they are compared with its manifest (module docstring)."""
        r = len(self.roots)
        self.roots.append(root)
        found = read_manifest(root)
        manifest = found or {}
        if whole:
            self._compare_with_manifest(root, names, found, allow_missing)
        listed = {e.get("file"): e for e in manifest.get("shards", []) if isinstance(e, dict)}
        for sha, table in (manifest.get("category_tables") or {}).items():
            if isinstance(table, list) and categories_sha256(table) == sha:
                self.tables.setdefault(sha, table)
        for name in names:
            path = root / name
            entry = listed.get(name)
            source = "manifest"
            if not is_complete_entry(entry) or entry.get("file") != name:
                entry, source = _sidecar_of(path), "sidecar"
            if entry is not None and entry.get("bytes") not in (None, _size(path)):
                entry = None  # the file was replaced since its entry was written: read the file itself
            if entry is not None:
                self.sources[source] += 1
                self.add(r, name, entry)
                continue
            shard = Shard(path)
            try:
                names_ = shard.category_names
                entry = {
                    "file": name,
                    "num_scenes": shard.num_scenes,
                    "first_scene": int(shard.scene_ids[0]) if shard.num_scenes else 0,
                    "render_id": render_id_from_attrs(shard.attrs),
                    "compat": compat_from_attrs(shard.attrs),
                }
                self.tables.setdefault(entry["compat"]["categories_sha256"], names_)
                self.sources["opened"] += 1
                self.add(r, name, entry, shard.scene_ids)
            finally:
                shard.close()

    def _compare_with_manifest(
        self, root: Path, names: list[str], manifest: dict[str, Any] | None, allow_missing: bool
    ) -> None:
        gaps = folder_gaps(root, names, manifest)
        if gaps.missing:
            if not allow_missing:
                raise missing_error(gaps)
            log.warning("%s", skipped_line(gaps))
            self.missing.extend((root / name, scenes) for name, scenes in gaps.missing)
        if gaps.unlisted:
            log.warning("%s", unlisted_line(gaps))
            self.unlisted.extend(root / name for name in gaps.unlisted)

    def build(self) -> ShardIndex:
        if not self.names:
            raise FileNotFoundError("no shards given")
        counts = np.asarray(self.counts, dtype=np.int64)
        total = int(counts.sum())
        shard_of = np.repeat(np.arange(len(self.names), dtype=np.int64), counts)
        starts = np.cumsum(counts) - counts
        local = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
        ids = np.repeat(np.asarray(self.firsts, dtype=np.int64), counts) + local
        for k, explicit in self.explicit.items():
            ids[starts[k] : starts[k] + counts[k]] = explicit
        render_of_shard = np.asarray(self.render_of, dtype=np.int64)
        ordered = sorted(
            self.render_ids, key=lambda rid: rid
        )  # sorted render ids: the order the folders are given in does not matter
        rank_of = np.empty(len(ordered), dtype=np.int64)
        for rank, rid in enumerate(ordered):
            rank_of[self.render_ids[rid]] = rank
        shard_rank = rank_of[render_of_shard]
        scene_rank = shard_rank[shard_of]
        order = np.lexsort((ids, scene_rank))
        shard_of, local, ids, scene_rank = shard_of[order], local[order], ids[order], scene_rank[order]
        self._refuse_duplicates(scene_rank, ids, shard_of, ordered)
        agreed = self.checker.agreed()
        self._check_version(agreed)
        names = self._category_names(agreed["categories_sha256"])
        id_dtype = np.int32 if total == 0 or (ids.min() >= -(1 << 31) and ids.max() < (1 << 31)) else np.int64
        return ShardIndex(
            roots=self.roots,
            shard_root=np.asarray(self.root_of, dtype=_smallest_uint(len(self.roots))),
            shard_relpath=np.array([n.encode("utf-8") for n in self.names], dtype=np.bytes_),
            shard_render=shard_rank.astype(_smallest_uint(len(ordered))),
            shard_scenes=counts.astype(np.uint32),
            render_ids=ordered,
            scene_shard=shard_of.astype(_smallest_uint(len(self.names))),
            scene_local=local.astype(_smallest_uint(int(counts.max(initial=0)))),
            scene_id=ids.astype(id_dtype),
            compat={**agreed, "package_version": "", "config_hash": ""},
            category_names=names,
            opened=self.sources["opened"],
            sources=dict(self.sources),
            missing=list(self.missing),
            unlisted=list(self.unlisted),
        )

    def _path(self, k: int) -> Path:
        return self.roots[self.root_of[k]] / self.names[k]

    def _refuse_duplicates(self, rank: np.ndarray, ids: np.ndarray, shard_of: np.ndarray, ordered: list[str]) -> None:
        same = (rank[1:] == rank[:-1]) & (ids[1:] == ids[:-1])
        if not same.any():
            return
        i = int(np.flatnonzero(same)[0])
        rid = ordered[int(rank[i])]
        render = f"render {rid}" if rid else "a render without render_id"
        raise MixedShardsError(
            self._path(int(shard_of[i])),
            "dataset 'scene_id'",
            f"scene id {int(ids[i])} of {render} appears in more than one shard, also in "
            f"{self._path(int(shard_of[i + 1]))} (the same scenes given twice?); give each "
            f"render folder once",
        )

    def _check_version(self, agreed: dict[str, Any]) -> None:
        if agreed["format_version"] != FORMAT_VERSION:
            first = self.checker.first["format_version"][1]
            raise ShardFormatError(
                first,
                "attribute 'format_version'",
                f"expected {FORMAT_VERSION}, found {agreed['format_version']!r} (re-render or upgrade synthssl)",
            )

    def _category_names(self, sha: str) -> list[str]:
        if sha not in self.tables:  # listed only by sidecars: read the table from the first shard having it
            shard = Shard(self.checker.first["categories_sha256"][1])
            try:
                names = shard.category_names
            finally:
                shard.close()
            if categories_sha256(names) != sha:
                raise ShardFormatError(
                    shard.path,
                    "attribute 'category_names'",
                    "differs from its manifest entry's "
                    "categories_sha256 (the shard changed since); rebuild the manifest",
                )
            self.tables[sha] = names
        return list(self.tables[sha])


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _sidecar_of(path: Path) -> dict[str, Any] | None:
    """The sidecar record of the shard at ``path`` when it is complete and names this file, else None."""
    entry = read_sidecar(path)
    return entry if entry is not None and Path(str(entry["file"])).name == path.name else None


def build_index(paths: Sequence[str | os.PathLike], allow_missing: bool = False) -> ShardIndex:
    """The index of every shard under ``paths`` (folders and/or files); see the module docstring.

    Raises FileNotFoundError for a missing path, ShardFormatError naming the file for a bad
    shard or for a shard its folder's manifest lists that is gone (unless ``allow_missing``),
    MixedShardsError naming two shards for incompatible shards or repeated scenes.
    """
    builder = _Builder()
    for path in paths:
        whole = Path(path).is_dir()
        for root, names in find_shard_roots([path]):
            builder.add_root(root, names, whole=whole, allow_missing=allow_missing)
    return builder.build()


__all__ = ["ShardIndex", "build_index"]
