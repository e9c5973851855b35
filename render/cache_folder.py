"""Cache folders: what a render builds once and every render process then maps instead of making it.

A cache folder lives under `cache_root`, named ``<kind>-<key>`` where the key hashes everything
it is made from (`stat_key`: file names, sizes and modification times, nothing is read). It
holds ``index.json`` (its format version and what describes its arrays) and one ``.npy`` file per
array. It is written into a temporary folder beside it that is renamed into place (of two
processes building the same folder at once, one rename wins and the other's copy is discarded),
then only read: `open_cached` maps its arrays read-only, so processes share one copy in the page
cache. When the folder cannot be written, the process keeps what it built in memory and says so
once. `synthssl.render.photo_cache` (decoded photos) and `synthssl.render.asset_cache` (parsed
meshes) are the two kinds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import numpy as np

log = logging.getLogger("synthssl.render")

INDEX_NAME = "index.json"

T = TypeVar("T")


def cache_root() -> Path:
    """Where synthssl keeps its caches: ``$SYNTHSSL_CACHE_DIR``, else ``$XDG_CACHE_HOME/synthssl``,
    else ``~/.cache/synthssl``."""
    if os.environ.get("SYNTHSSL_CACHE_DIR"):
        return Path(os.environ["SYNTHSSL_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "synthssl"


def stat_key(header: str, files: Iterable[tuple[str, Path]]) -> str:
    """32 hex: ``header`` (the kind, its format version, its settings), then per ``(name, path)``
    the name and the file's size and modification time."""
    h = hashlib.sha256(f"{header}\n".encode())
    for name, path in files:
        st = path.stat()
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def write_cache_folder(dest: Path, index: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``index`` as ``index.json`` and each array as ``<name>.npy`` into the cache folder
    ``dest``: a temporary folder beside it, renamed into place; when ``dest`` appeared meanwhile
    (another process), the copy is discarded. OSError when it cannot be written (nothing is left)."""
    tmp = dest.with_name(f".{dest.name}.tmp-{socket.gethostname()}-{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=False)
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        (tmp / INDEX_NAME).write_text(json.dumps(index))
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / INDEX_NAME).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_cache_folder(path: Path, version: int, names: Iterable[str]) -> tuple[dict, dict[str, np.ndarray]]:
    """(``index.json``, the arrays ``names`` mapped read-only) of the cache folder ``path``;
    ValueError when its format is not ``version``."""
    index = json.loads((path / INDEX_NAME).read_text())
    if index.get("version") != version:
        raise ValueError(f"{path / INDEX_NAME}: cache format {index.get('version')!r}, expected {version}")
    return index, {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in names}


def open_cached(
    dest: Path,
    read: Callable[[Path], T],
    build: Callable[[], T],
    write: Callable[[T, Path], None],
    what: str,
    making: str,
) -> T:
    """``read(dest)`` when the cache folder is there; else ``build()``, ``write`` it to ``dest`` and
    read it back. An unreadable folder, or one that cannot be written, leaves the built value in
    memory with a warning (``what``: "photo cache"; ``making``: what each process then does)."""
    if (dest / INDEX_NAME).is_file():
        try:
            return read(dest)
        except (OSError, ValueError) as exc:
            log.warning("%s %s is unreadable (%s); this process %s itself", what, dest, exc, making)
            return build()
    value = build()
    try:
        write(value, dest)
        return read(dest)
    except OSError as exc:
        log.warning(
            "cannot write the %s in %s (%s); each render process %s itself "
            "(set SYNTHSSL_CACHE_DIR to a writable folder)",
            what,
            dest.parent,
            exc.strerror or exc,
            making,
        )
        return value


__all__ = ["cache_root", "stat_key", "write_cache_folder", "read_cache_folder", "open_cached", "INDEX_NAME"]
