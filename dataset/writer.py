"""Write scenes into one shard file, atomically.

Typical use::

    with ShardWriter(out / "shard-00000.h5", height=128, width=128, views=2,
                     max_objects=8, attrs={"seed": 0, "first_scene": 0, ...}) as w:
        for scene in scenes:
            w.append(scene)

The shard is built in memory (HDF5's core driver, no backing store) and written out
only by `close`: its bytes go to ``<name>.tmp-<host>-<pid>`` beside the target with
plain file writes, are fsynced, and the file is renamed into place (``os.replace``).
So a killed run never leaves a partial shard under the final name, and a full disk
is a plain ``OSError`` from one write (the temporary file is then removed), never an
error inside the HDF5 library while it flushes (which can crash the process). Per-view
datasets are chunked one scene per chunk so that reading a scene touches only its own chunks.

Appended scenes are checked at once, kept (copied) and written into the HDF5 image in groups of
up to `BUFFER_SCENES` scenes (`BUFFER_BYTES` at most), one slab per field: HDF5's and h5py's
cost per write call is then paid once per group, not once per scene and field. The file is
the same as scene-by-scene writes make it (the chunks and their compression do not change).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from synthssl.core.version import package_version

from .manifest import tmp_suffix
from .schema import ALL_FIELDS, FORMAT_NAME, FORMAT_VERSION, SCENE_FIELDS, VIEW_FIELDS, scene_shape

#: Root attributes the caller must supply (the writer fills in the rest).
CALLER_ATTRS = ("seed", "render_config", "category_names", "first_scene")

_SCENE_FIELD_CHUNK = 256  # small per-scene arrays: many scenes per chunk
#: Scenes kept in memory before they are written into the HDF5 image together.
BUFFER_SCENES = 16
#: ... and at most this many bytes of them (large images: fewer scenes per group).
BUFFER_BYTES = 32 << 20


#: The default: deflate with the shuffle filter, which every HDF5 reader decodes (h5dump, the C,
#: Java, Julia, MATLAB libraries); level chosen by measurement (docs/shard-format.md).
DEFAULT_COMPRESSION = "gzip"
DEFAULT_GZIP_LEVEL = 1


@dataclass(frozen=True)
class Compression:
    """HDF5 filters of the per-view datasets: ``codec`` None | 'gzip' | 'lzf', ``level`` for gzip,
    ``shuffle`` (byte-shuffle before deflate: multi-byte fields such as depth compress better)."""

    codec: str | None
    level: int | None
    shuffle: bool


def parse_compression(spec: str | None) -> Compression:
    """'gzip' | 'gzip:N' (N = 0..9; deflate + shuffle) | 'lzf' (h5py only) | 'none' -> Compression."""
    if spec in (None, "none", ""):
        return Compression(None, None, False)
    if spec == "lzf":
        return Compression("lzf", None, False)
    if spec == "gzip":
        return Compression("gzip", DEFAULT_GZIP_LEVEL, True)
    if spec.startswith("gzip:") and spec[5:].isdigit() and 0 <= int(spec[5:]) <= 9:
        return Compression("gzip", int(spec[5:]), True)
    raise ValueError(f"compression: expected 'gzip', 'gzip:0'..'gzip:9', 'lzf' or 'none', got {spec!r}")


class ShardWriter:
    """Appends scenes to a new shard; see module docstring.

    Args:
        path: final file name (``shard-00000.h5`` by convention).
        height, width: image size in pixels. views: views per scene (V).
        max_objects: capacity M of the per-scene object arrays.
        attrs: root attributes; must hold ``seed``, ``render_config`` (dict or JSON
            string), ``category_names`` (list of str) and ``first_scene`` (int).
        compression: 'gzip' (default: deflate + shuffle), 'gzip:N', 'lzf' or 'none'.
        expected_scenes: optional number of scenes to pre-allocate.

    After `close`: ``nbytes`` and ``sha256`` describe the file written (hashed from memory,
    so finishing a shard never reads it back), ``root_attrs`` holds the root attributes as
    written. ``tmp_path`` is the temporary name used.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        height: int,
        width: int,
        views: int,
        max_objects: int,
        attrs: Mapping[str, Any],
        compression: str | None = DEFAULT_COMPRESSION,
        expected_scenes: int | None = None,
    ):
        missing = [k for k in CALLER_ATTRS if k not in attrs]
        if missing:
            raise ValueError(f"ShardWriter({path}): attrs is missing {missing}")
        self.path = Path(path)
        self.height, self.width, self.views, self.max_objects = int(height), int(width), int(views), int(max_objects)
        self.count = 0
        self._tmp = self.path.with_name(f"{self.path.name}{tmp_suffix()}")
        self.nbytes: int | None = None
        self.sha256: str | None = None
        self.root_attrs: dict[str, Any] = {}
        comp = parse_compression(compression)
        self._file = None
        self._attrs = dict(attrs)
        self._pending: list[dict[str, Any]] = []
        self._pending_bytes = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = h5py.File(self._tmp.name, "w", driver="core", backing_store=False)
            self._create_datasets(max(int(expected_scenes or 1), 1), comp)
        except BaseException:
            self.abort()  # e.g. a full disk: no temporary file is left behind
            raise

    @property
    def tmp_path(self) -> Path:
        return self._tmp

    def _create_datasets(self, cap: int, comp: Compression) -> None:
        for name, spec in ALL_FIELDS.items():
            shape = scene_shape(name, self.height, self.width, self.views, self.max_objects)
            dtype = spec.dtype if spec.dtype is not None else h5py.string_dtype("utf-8")
            chunk_n = 1 if spec.per_view else _SCENE_FIELD_CHUNK
            self._file.create_dataset(
                name,
                shape=(cap, *shape),
                maxshape=(None, *shape),
                dtype=dtype,
                chunks=(chunk_n, *shape),
                compression=comp.codec if spec.per_view else None,
                compression_opts=comp.level if spec.per_view else None,
                shuffle=comp.shuffle and spec.per_view,
            )

    # -- writing ---------------------------------------------------------
    def append(self, scene: Mapping[str, Any]) -> None:
        """Append one scene: view fields shaped [V, ...], scene fields per-scene values. The values
        are checked and copied now (the caller may reuse its arrays), written with the next group."""
        missing = [k for k in ALL_FIELDS if k not in scene]
        if missing:
            raise ValueError(f"{self.path}: scene is missing fields {missing}")
        kept: dict[str, Any] = {}
        for name, spec in ALL_FIELDS.items():
            value = scene[name]
            if spec.dtype is None:
                if not isinstance(value, str):
                    raise TypeError(f"{self.path}: field '{name}': expected str, got {type(value).__name__}")
                kept[name] = value
                continue
            arr = np.asarray(value)
            want = scene_shape(name, self.height, self.width, self.views, self.max_objects)
            if arr.shape != want:
                raise ValueError(f"{self.path}: field '{name}': expected shape {want}, got {arr.shape}")
            if not np.can_cast(arr.dtype, spec.dtype, casting="same_kind"):
                raise TypeError(f"{self.path}: field '{name}': expected dtype {spec.dtype}, got {arr.dtype}")
            kept[name] = np.array(arr, dtype=spec.dtype)
            self._pending_bytes += kept[name].nbytes
        self._pending.append(kept)
        self.count += 1
        if len(self._pending) >= BUFFER_SCENES or self._pending_bytes >= BUFFER_BYTES:
            self._write_pending()

    def _write_pending(self) -> None:
        """Write the kept scenes into the HDF5 image: one slab per field."""
        if not self._pending:
            return
        n = len(self._pending)
        first = self.count - n
        for name, spec in ALL_FIELDS.items():
            ds = self._file[name]
            if ds.shape[0] < self.count:
                ds.resize(max(2 * ds.shape[0], self.count), axis=0)
            values = [scene[name] for scene in self._pending]
            ds[first : self.count] = np.array(values, dtype=object) if spec.dtype is None else np.stack(values)
        self._pending, self._pending_bytes = [], 0

    def close(self) -> Path:
        """Trim, write the root attributes, flush, and rename into place. Returns the final path."""
        if self._file is None:
            return self.path
        self._write_pending()
        for name in ALL_FIELDS:
            self._file[name].resize(self.count, axis=0)
        a = self._file.attrs
        a["format"] = FORMAT_NAME
        a["format_version"] = FORMAT_VERSION
        a["height"], a["width"], a["views"], a["max_objects"] = self.height, self.width, self.views, self.max_objects
        a["num_scenes"] = self.count
        a["package_version"] = package_version()
        for k, v in self._attrs.items():
            if isinstance(v, (dict, list, tuple)):  # render_config, category_names, asset_names
                v = json.dumps(v, sort_keys=True)
            a[k] = v
        self.root_attrs = {k: a[k] for k in a}
        self._file.flush()
        image = self._file.id.get_file_image()
        self._file.close()
        self._file = None
        self.nbytes, self.sha256 = len(image), hashlib.sha256(image).hexdigest()
        try:
            with open(self._tmp, "wb") as fh:
                fh.write(image)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(self._tmp, self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        """Discard everything written so far (the final path is never touched). Never raises for
        a file that can no longer be flushed (full disk): the temporary file is removed anyway."""
        self._pending, self._pending_bytes = [], 0
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # noqa: BLE001 - the data is being discarded
                pass
            self._file = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


__all__ = [
    "ShardWriter",
    "Compression",
    "parse_compression",
    "DEFAULT_COMPRESSION",
    "BUFFER_SCENES",
    "BUFFER_BYTES",
    "SCENE_FIELDS",
    "VIEW_FIELDS",
]
