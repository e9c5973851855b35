"""Read shards into NumPy (no torch).

``ShardCollection`` puts many shards (from any number of render folders) behind one global
scene index, with a train/val split by scene id that does not depend on how scenes were cut
into shards. The index comes from the folders' manifests (`synthssl.dataset.index`), so
building it opens no shard when every folder has a current manifest; shards are opened only
when a scene of theirs is read, and at most ``max_open_shards`` stay open per process (least
recently used closed first). A DataLoader worker or DDP rank therefore opens only the shards
of the scenes its sampler hands it. ``Shard`` (one file) lives in `synthssl.dataset.shard`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

# First: manifest.py imports SHARD_GLOB from this module, and index.py (below) imports manifest.py.
from .layout import SHARD_GLOB, find_shards  # isort: skip

from .errors import OpenFilesLimitError, ShardFormatError
from .index import ShardIndex, build_index
from .schema import VIEW_FIELDS, categories_sha256
from .shard import Shard, open_files_limit

#: Environment variable that sets the default of ``max_open_shards``.
MAX_OPEN_ENV = "SYNTHSSL_MAX_OPEN_SHARDS"
#: Ceiling of the default ``max_open_shards`` (HDF5 keeps a chunk cache per open file).
MAX_OPEN_CEILING = 128


def _hash_unit(scene_ids: np.ndarray, salt: int = 0x5EED) -> np.ndarray:
    """A deterministic value in [0, 1) per scene id (splitmix64), independent of platform."""
    with np.errstate(over="ignore"):
        z = scene_ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(salt + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def is_validation_scene(scene_ids: np.ndarray, val_fraction: float) -> np.ndarray:
    """Bool mask: which scene ids fall in the held-out split (stable across shard layouts)."""
    return _hash_unit(np.asarray(scene_ids, dtype=np.int64)) < val_fraction


def default_max_open_shards() -> int:
    """``$SYNTHSSL_MAX_OPEN_SHARDS`` when set, else an eighth of ``ulimit -n`` (at most 128, at least 1):
    the rest of the handles stay free for DataLoader pipes, sockets, logs and checkpoints."""
    env = os.environ.get(MAX_OPEN_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"{MAX_OPEN_ENV}: expected a whole number >= 1, got {env!r}")
        return int(env)
    limit = open_files_limit()
    return MAX_OPEN_CEILING if limit < 0 else max(1, min(MAX_OPEN_CEILING, limit // 8))


class OpenShards:
    """At most ``capacity`` open `Shard` objects of one `ShardIndex`, least recently used closed first.

    Handles belong to the process that opened them: after a fork the child starts with none.
    A shard is checked against the index when it is opened (scene count, render id, compat), so
    a shard replaced since its manifest entry was written is refused instead of misread.
    """

    def __init__(self, index: ShardIndex, capacity: int):
        if capacity < 1:
            raise ValueError(f"max_open_shards: expected a whole number >= 1, got {capacity}")
        self.index, self.capacity = index, int(capacity)
        self._open: OrderedDict[int, Shard] = OrderedDict()
        self._pid = os.getpid()
        self.opens = 0  # shards opened by this process so far

    def __len__(self) -> int:
        return len(self._open)

    def get(self, k: int) -> Shard:
        """Shard ``k`` of the index, opened if needed."""
        if self._pid != os.getpid():  # forked: the parent's handles are not ours to use or close
            self._open, self._pid, self.opens = OrderedDict(), os.getpid(), 0
        shard = self._open.get(k)
        if shard is not None:
            self._open.move_to_end(k)
            return shard
        while len(self._open) >= self.capacity:
            self._open.popitem(last=False)[1].close()
        path = self.index.shard_path(k)
        try:
            shard = Shard(path)
        except OpenFilesLimitError:
            raise OpenFilesLimitError(
                path,
                None,
                f"cannot be opened: this process ran out of file handles "
                f"(ulimit -n is {open_files_limit()}) while holding {len(self._open)} "
                f"shard(s) open (max_open_shards={self.capacity}); lower max_open_shards "
                f"(environment variable {MAX_OPEN_ENV}) or raise ulimit -n",
            ) from None
        try:
            self._check(k, shard)
        except BaseException:
            shard.close()
            raise
        self.opens += 1
        self._open[k] = shard
        return shard

    def _check(self, k: int, shard: Shard) -> None:
        """Shard ``k`` as opened against its index entry (reads 3 attributes, not all of them)."""
        index = self.index
        hint = (
            "the shard changed since its manifest entry was written; rebuild the folder's manifest "
            "(render-scenes index DIR) or re-render it"
        )
        if shard.num_scenes != int(index.shard_scenes[k]):
            raise ShardFormatError(
                shard.path,
                "attribute 'num_scenes'",
                f"{shard.num_scenes} in the file but {int(index.shard_scenes[k])} in the index; {hint}",
            )
        rid = str(shard.attr("render_id", ""))
        if rid != index.render_of_shard(k):
            raise ShardFormatError(
                shard.path,
                "attribute 'render_id'",
                f"{rid!r} in the file but {index.render_of_shard(k)!r} in the index; {hint}",
            )
        views, height, width = shard.view_shape()
        found = {
            "views": views,
            "height": height,
            "width": width,
            "categories_sha256": categories_sha256(shard.category_names),
            "assets_sha256": str(shard.attr("assets_sha256", "")),
        }
        for key, value in found.items():
            if value != index.compat[key] and (value != "" or key != "assets_sha256"):
                raise ShardFormatError(
                    shard.path,
                    f"compat '{key}'",
                    f"{value!r} in the file but {index.compat[key]!r} for the other shards; {hint}",
                )

    def close(self) -> None:
        """Close every handle this process holds."""
        if self._pid == os.getpid():
            for shard in self._open.values():
                shard.close()
        self._open.clear()


class ShardCollection:
    """All scenes of many shards behind one index.

    Args:
        paths: render folders (flat or nested shards) and/or ``.h5`` files.
        split: None (all scenes), "train" or "val".
        val_fraction: fraction of scenes held out for "val", chosen by a hash of
            the scene id.
        fields: the fields ``collection[i]`` reads (default: all).
        max_open_shards: HDF5 handles kept open per process (default: `default_max_open_shards`).
        allow_missing: read what is left of a folder whose manifest lists shards that are gone
            (default: refuse with `ShardFormatError` naming the first one); the skipped shards
            are named in one warning and counted in `skipped_scenes` and `missing_shards`.

    ``collection[i]`` returns the scene dict of :meth:`Shard.read_scene`. Scenes are ordered by
    (render id, scene id); a scene is identified by that pair, so renders with different seeds
    read together, while the same scenes given twice, or shards that differ in category table,
    asset set, image size, views or format version, raise `MixedShardsError` naming two shards.
    Shard files a folder's manifest does not list are read and named in one warning
    (`unlisted_shards`; see `synthssl.dataset.completeness`).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        split: str | None = None,
        val_fraction: float = 0.0,
        fields: Iterable[str] | None = None,
        *,
        max_open_shards: int | None = None,
        allow_missing: bool = False,
    ):
        if split not in (None, "train", "val"):
            raise ValueError(f"split: expected None, 'train' or 'val', got {split!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in [0, 1), got {val_fraction}")
        paths = list(paths)
        if not paths:
            raise FileNotFoundError("ShardCollection: no shards given")
        index = build_index(paths, allow_missing=allow_missing)
        if split is not None:
            val = is_validation_scene(index.scene_id, val_fraction)
            index = index.select(val if split == "val" else ~val)
        self.index = index
        self.fields = list(fields) if fields is not None else None
        self.max_open_shards = int(max_open_shards) if max_open_shards is not None else default_max_open_shards()
        self._handles = OpenShards(index, self.max_open_shards)
        self._attrs: dict[str, Any] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handles"] = None  # handles never travel to another process
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._handles = OpenShards(self.index, self.max_open_shards)

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes of the first shard (opened once for this)."""
        if self._attrs is None:
            self._attrs = dict(self._handles.get(int(self.index.scene_shard[0]) if len(self) else 0).attrs)
        return self._attrs

    @property
    def category_names(self) -> list[str]:
        return list(self.index.category_names)

    @property
    def height(self) -> int:
        return int(self.index.compat["height"])

    @property
    def width(self) -> int:
        return int(self.index.compat["width"])

    @property
    def views(self) -> int:
        return int(self.index.compat["views"])

    @property
    def shard_paths(self) -> list[Path]:
        return [self.index.shard_path(k) for k in range(self.index.num_shards)]

    @property
    def missing_shards(self) -> list[Path]:
        """Shards listed in a manifest that are gone, skipped with ``allow_missing`` (else none)."""
        return [path for path, _ in self.index.missing]

    @property
    def skipped_scenes(self) -> int:
        """Scenes of the `missing_shards` (as their manifest entries count them, all splits): not read."""
        return sum(scenes for _, scenes in self.index.missing)

    @property
    def unlisted_shards(self) -> list[Path]:
        """Shard files read that their folder's manifest does not list."""
        return list(self.index.unlisted)

    @property
    def render_ids(self) -> list[str]:
        """Render id of each scene's render ("" for shards without provenance attributes)."""
        return [self.index.render_ids[int(r)] for r in self.index.shard_render[self.index.scene_shard]]

    @property
    def scene_ids(self) -> np.ndarray:
        """int64 [len]: each scene's id within its render."""
        return self.index.scene_id.astype(np.int64)

    def scene_id(self, i: int) -> int:
        """The scene id (within its render) of item ``i``."""
        return int(self.index.scene_id[i])

    @property
    def open_shards(self) -> int:
        """HDF5 handles this process holds now."""
        return len(self._handles)

    def close(self) -> None:
        """Close every open shard of this process (they re-open when read again)."""
        self._handles.close()

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"scene {i} out of range [0, {len(self)})")
        k, local = int(self.index.scene_shard[i]), int(self.index.scene_local[i])
        shard = self._handles.get(k)
        if int(shard.scene_ids[local]) != int(self.index.scene_id[i]):
            raise ShardFormatError(
                shard.path,
                "dataset 'scene_id'",
                f"scene {local} has id {int(shard.scene_ids[local])} "
                f"but the manifest says {int(self.index.scene_id[i])}; the shard changed since "
                f"its manifest entry was written; rebuild the folder's manifest",
            )
        return shard.read_scene(local, self.fields)


__all__ = [
    "Shard",
    "ShardCollection",
    "OpenShards",
    "find_shards",
    "is_validation_scene",
    "default_max_open_shards",
    "SHARD_GLOB",
    "VIEW_FIELDS",
]
