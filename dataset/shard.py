"""One shard file, read into NumPy (no torch).

``Shard`` opens its HDF5 file on construction (checking the header) and re-opens it after a
fork, so one object can be built in a parent process and used inside DataLoader workers: every
process gets its own handle. Running out of file handles raises `OpenFilesLimitError` (not a
"corrupt file" error).
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np

from .errors import OpenFilesLimitError, ShardFormatError
from .schema import ALL_FIELDS, FORMAT_NAME, FORMAT_VERSION, ROOT_ATTRS

#: Float fields whose every value must be finite (depth 0 = no surface, normal 0 = no surface).
_FINITE_FIELDS = ("depth", "normal")
#: errno values meaning "no file handle left" (per process, system-wide).
_HANDLE_ERRNOS = (errno.EMFILE, errno.ENFILE)


def open_files_limit() -> int:
    """The soft ``ulimit -n`` of this process (file handles it may hold; -1 = unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return -1 if soft == resource.RLIM_INFINITY else int(soft)


def _errno_of(exc: OSError) -> int | None:
    """The C errno behind an h5py OSError (h5py puts it in the message as 'errno = N')."""
    if exc.errno is not None:
        return exc.errno
    found = re.search(r"errno = (\d+)", str(exc))
    return int(found.group(1)) if found else None


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
        try:
            self._attrs: dict[str, Any] | None = None  # all root attributes, decoded on first use
            self._check_header(f)
            self.num_scenes = int(f["scene_id"].shape[0])
            self.scene_ids = np.asarray(f["scene_id"][:], dtype=np.int64)
        except BaseException:
            f = None  # noqa: F841 - the traceback keeps this frame: drop its reference to the file too
            self.close()  # a rejected shard holds no file handle
            raise

    # -- handle management (fork-safe) -----------------------------------
    def _open(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            if not self.path.exists():
                raise ShardFormatError(self.path, None, "file does not exist")
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                if _errno_of(e) in _HANDLE_ERRNOS:
                    raise OpenFilesLimitError(
                        self.path,
                        None,
                        f"cannot be opened: this process ran out of file "
                        f"handles ({errno.errorcode[_errno_of(e)]}, ulimit -n is "
                        f"{open_files_limit()}); lower max_open_shards (environment "
                        f"variable SYNTHSSL_MAX_OPEN_SHARDS) or raise ulimit -n",
                    ) from None
                raise ShardFormatError(self.path, None, f"cannot be opened as HDF5 (truncated or corrupt?): {e}") from e
            self._pid = os.getpid()
            self._datasets = {}
        return self._file

    def _dataset(self, name: str) -> h5py.Dataset:
        """Dataset ``name``, looked up once per handle (a lookup costs more than reading a small scene;
        only the fields actually read are looked up, which keeps opening a shard cheap)."""
        ds = self._datasets.get(name)
        if ds is None:
            ds = self._datasets[name] = self._file[name]
        return ds

    def close(self) -> None:
        """Release this process's handle. The last references to the file and its datasets are
        dropped, which closes the HDF5 file and its descriptor at once; ``h5py.File.close`` would
        also scan every HDF5 object open in the process, 10x slower with a hundred shards open."""
        self._datasets = {}
        self._file = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None
        state["_datasets"] = {}
        state["_pid"] = None
        return state

    def _check_header(self, f: h5py.File) -> None:
        fmt = self.attr("format")
        if fmt != FORMAT_NAME:
            raise ShardFormatError(self.path, "attribute 'format'", f"expected {FORMAT_NAME!r}, found {fmt!r}")
        ver = self.attr("format_version")
        if ver != FORMAT_VERSION:
            raise ShardFormatError(
                self.path,
                "attribute 'format_version'",
                f"expected {FORMAT_VERSION}, found {ver!r} (re-render or upgrade synthssl)",
            )
        present = set(f.attrs.keys())  # names only: reading every attribute costs more than opening the file
        for k in ROOT_ATTRS:
            if k not in present:
                raise ShardFormatError(self.path, f"attribute '{k}'", "missing")
        present = set(f.keys())
        for name in ALL_FIELDS:
            if name not in present:
                raise ShardFormatError(self.path, f"dataset '{name}'", "missing")

    # -- properties ------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        """Every root attribute, decoded (str / int / float)."""
        if self._attrs is None:
            self._attrs = {k: _decode_attr(v) for k, v in self._open().attrs.items()}
        return self._attrs

    def attr(self, name: str, default: Any = None) -> Any:
        """One root attribute, decoded (``default`` when the shard has none), read alone."""
        if self._attrs is not None:
            return self._attrs.get(name, default)
        value = self._open().attrs.get(name)
        return default if value is None else _decode_attr(value)

    def view_shape(self) -> tuple[int, int, int]:
        """(views, height, width) of the stored images."""
        return tuple(int(x) for x in self._dataset("rgb").shape[1:4])

    @property
    def height(self) -> int:
        return int(self.attr("height"))

    @property
    def width(self) -> int:
        return int(self.attr("width"))

    @property
    def views(self) -> int:
        return int(self.attr("views"))

    @property
    def category_names(self) -> list[str]:
        return list(json.loads(self.attr("category_names")))

    @property
    def render_config(self) -> dict:
        return dict(json.loads(self.attr("render_config")))

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
        out: dict[str, Any] = {}
        for name in fields if fields is not None else ALL_FIELDS:
            if name not in ALL_FIELDS:
                raise KeyError(f"unknown field {name!r}; known: {sorted(ALL_FIELDS)}")
            try:
                value = self._dataset(name)[index]
            except (OSError, RuntimeError) as e:
                raise ShardFormatError(
                    self.path,
                    f"dataset '{name}'",
                    f"{self._scene(index)} cannot be read (corrupt chunk?): {str(e).splitlines()[0] if str(e) else e}",
                ) from None
            if name in _FINITE_FIELDS and not np.isfinite(value).all():
                raise ShardFormatError(
                    self.path,
                    f"dataset '{name}'",
                    f"{self._scene(index)} holds non-finite values (NaN or inf); re-render this shard",
                )
            if name == "objects_json":
                value = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            out[name] = value
        return out


__all__ = ["Shard", "open_files_limit"]
