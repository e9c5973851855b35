"""Read shards into NumPy (no torch).

``Shard`` opens its HDF5 file lazily and re-opens it after a fork, so one object
can be built in a parent process and used inside DataLoader workers: every
process gets its own handle. ``ShardCollection`` puts many shards (from any
number of directories) behind one global scene index, with a train/val split by
scene id that does not depend on how scenes were cut into shards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from .errors import ShardFormatError
from .schema import ALL_FIELDS, FORMAT_NAME, FORMAT_VERSION, ROOT_ATTRS, VIEW_FIELDS

SHARD_GLOB = "shard-*.h5"
#: Float fields whose every value must be finite (depth 0 = no surface, normal 0 = no surface).
_FINITE_FIELDS = ("depth", "normal")


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, np.generic):
        value = value.item()
    return value


class Shard:
    """One shard file. ``len(shard)`` scenes; ``read_scene(i)`` returns one of them.

    Opening checks the format name, the version and that every dataset exists,
    raising :class:`ShardFormatError` naming the file and field otherwise.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._pid: int | None = None
        f = self._open()
        self.attrs: dict[str, Any] = {k: _decode_attr(v) for k, v in f.attrs.items()}
        self._check_header(f)
        self.num_scenes = int(f["scene_id"].shape[0])
        self.scene_ids = np.asarray(f["scene_id"][:], dtype=np.int64)

    # -- handle management (fork-safe) -----------------------------------
    def _open(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            if not self.path.exists():
                raise ShardFormatError(self.path, None, "file does not exist")
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                raise ShardFormatError(self.path, None, f"cannot be opened as HDF5 (truncated or corrupt?): {e}") from e
            self._pid = os.getpid()
            # Looking datasets up by name costs more than reading a small scene: cache them.
            self._datasets = {name: self._file[name] for name in ALL_FIELDS if name in self._file}
        return self._file

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._datasets = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_datasets"] = {}
        state["_pid"] = None
        return state

    def _check_header(self, f: h5py.File) -> None:
        fmt = self.attrs.get("format")
        if fmt != FORMAT_NAME:
            raise ShardFormatError(self.path, "attribute 'format'", f"expected {FORMAT_NAME!r}, found {fmt!r}")
        ver = self.attrs.get("format_version")
        if ver != FORMAT_VERSION:
            raise ShardFormatError(self.path, "attribute 'format_version'",
                                   f"expected {FORMAT_VERSION}, found {ver!r} (re-render or upgrade synthssl)")
        for k in ROOT_ATTRS:
            if k not in self.attrs:
                raise ShardFormatError(self.path, f"attribute '{k}'", "missing")
        for name in ALL_FIELDS:
            if name not in f:
                raise ShardFormatError(self.path, f"dataset '{name}'", "missing")

    # -- properties ------------------------------------------------------
    @property
    def height(self) -> int:
        return int(self.attrs["height"])

    @property
    def width(self) -> int:
        return int(self.attrs["width"])

    @property
    def views(self) -> int:
        return int(self.attrs["views"])

    @property
    def category_names(self) -> list[str]:
        return list(json.loads(self.attrs["category_names"]))

    @property
    def render_config(self) -> dict:
        return dict(json.loads(self.attrs["render_config"]))

    def __len__(self) -> int:
        return self.num_scenes

    # -- reading ---------------------------------------------------------
    def _scene(self, index: int) -> str:
        """'scene 3 (scene id 11)': the scene's position in this shard and its global id."""
        return f"scene {index} (scene id {int(self.scene_ids[index])})"

    def read_scene(self, index: int, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """Scene ``index`` (0-based within this shard) as a dict of arrays.

        View fields come as [V, ...] arrays, per-scene fields as scalars/arrays,
        ``objects_json`` as a str. ``fields`` restricts what is read (default: all).
        A chunk that fails to decode, or non-finite depth or normals, raise
        ShardFormatError naming the shard, the dataset and the scene.
        """
        if not 0 <= index < self.num_scenes:
            raise IndexError(f"{self.path}: scene {index} out of range [0, {self.num_scenes})")
        self._open()
        datasets = self._datasets
        out: dict[str, Any] = {}
        for name in fields if fields is not None else ALL_FIELDS:
            if name not in ALL_FIELDS:
                raise KeyError(f"unknown field {name!r}; known: {sorted(ALL_FIELDS)}")
            try:
                value = datasets[name][index]
            except (OSError, RuntimeError) as e:
                raise ShardFormatError(self.path, f"dataset '{name}'", f"{self._scene(index)} cannot be read "
                                       f"(corrupt chunk?): {str(e).splitlines()[0] if str(e) else e}") from None
            if name in _FINITE_FIELDS and not np.isfinite(value).all():
                raise ShardFormatError(self.path, f"dataset '{name}'", f"{self._scene(index)} holds non-finite "
                                       f"values (NaN or inf); re-render this shard")
            if name == "objects_json":
                value = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            out[name] = value
        return out


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


def find_shards(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand directories (``shard-*.h5`` inside) and files into a sorted list of shard paths."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(p.glob(SHARD_GLOB))
            if not found:
                raise FileNotFoundError(f"{p}: no {SHARD_GLOB} files in this directory (render some with render-scenes)")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such shard file or directory")
    return out


class ShardCollection:
    """All scenes of many shards behind one index.

    Args:
        paths: shard directories and/or ``.h5`` files.
        split: None (all scenes), "train" or "val".
        val_fraction: fraction of scenes held out for "val", chosen by a hash of
            the scene id.

    ``collection[i]`` returns the scene dict of :meth:`Shard.read_scene`. All shards
    must agree on image size and views (checked, naming the odd file).
    """

    def __init__(self, paths: Sequence[str | os.PathLike], split: str | None = None, val_fraction: float = 0.0,
                 fields: Iterable[str] | None = None):
        if split not in (None, "train", "val"):
            raise ValueError(f"split: expected None, 'train' or 'val', got {split!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in [0, 1), got {val_fraction}")
        self.shards = [Shard(p) for p in find_shards(paths)]
        if not self.shards:
            raise FileNotFoundError("ShardCollection: no shards given")
        first = self.shards[0]
        for s in self.shards[1:]:
            for key in ("height", "width", "views"):
                if s.attrs[key] != first.attrs[key]:
                    raise ShardFormatError(s.path, f"attribute '{key}'",
                                           f"expected {first.attrs[key]} (as in {first.path}), found {s.attrs[key]}")
        self.fields = list(fields) if fields is not None else None
        index = []
        for si, s in enumerate(self.shards):
            for li, sid in enumerate(s.scene_ids):
                index.append((si, li, int(sid)))
        index.sort(key=lambda t: t[2])
        ids = np.array([t[2] for t in index], dtype=np.int64)
        if len(np.unique(ids)) != len(ids):
            dup = ids[np.flatnonzero(np.diff(ids) == 0)[0]]
            raise ShardFormatError(self.shards[0].path.parent, "dataset 'scene_id'",
                                   f"scene id {dup} appears in more than one shard (the same scenes given twice?)")
        if split is not None:
            val = is_validation_scene(ids, val_fraction)
            keep = val if split == "val" else ~val
            index = [t for t, k in zip(index, keep) if k]
        self._index = index

    @property
    def attrs(self) -> dict[str, Any]:
        return self.shards[0].attrs

    @property
    def category_names(self) -> list[str]:
        return self.shards[0].category_names

    @property
    def height(self) -> int:
        return self.shards[0].height

    @property
    def width(self) -> int:
        return self.shards[0].width

    @property
    def views(self) -> int:
        return self.shards[0].views

    @property
    def scene_ids(self) -> np.ndarray:
        return np.array([t[2] for t in self._index], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        si, li, _ = self._index[i]
        return self.shards[si].read_scene(li, self.fields)


__all__ = ["Shard", "ShardCollection", "find_shards", "is_validation_scene", "VIEW_FIELDS"]
