"""``manifest.json``: the list of shards in a directory, with scene counts and checksums.

Several processes (cluster array jobs) may finish shards in the same directory at
the same time. :func:`update_manifest` therefore rebuilds the manifest from the
shard files present, under an exclusive ``flock`` on ``.manifest.lock``, and
writes it atomically; checksums of files whose size and mtime did not change are
reused instead of recomputed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import h5py

from .reader import SHARD_GLOB
from .schema import FORMAT_NAME, FORMAT_VERSION

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".manifest.lock"


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed manifest of ``directory``, or None when it has none."""
    p = Path(directory) / MANIFEST_NAME
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e}); delete it and run `render-scenes validate --fix-manifest`") from e


@contextmanager
def manifest_lock(directory: str | os.PathLike) -> Iterator[None]:
    """Exclusive inter-process lock for manifest updates in ``directory``."""
    lock = Path(directory) / LOCK_NAME
    with open(lock, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def shard_entry(path: Path, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Manifest entry of one finished shard (reuses ``previous``'s checksum if the file is unchanged)."""
    st = path.stat()
    if previous and previous.get("bytes") == st.st_size and previous.get("mtime_ns") == st.st_mtime_ns:
        return previous
    with h5py.File(path, "r") as f:
        num = int(f.attrs["num_scenes"])
        first = int(f.attrs["first_scene"])
    return {"file": path.name, "num_scenes": num, "first_scene": first, "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(path)}


def update_manifest(directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rebuild ``manifest.json`` from the shards now in ``directory`` (locked, atomic). Returns it."""
    directory = Path(directory)
    with manifest_lock(directory):
        old = read_manifest(directory) or {}
        prev = {e["file"]: e for e in old.get("shards", [])}
        entries = [shard_entry(p, prev.get(p.name)) for p in sorted(directory.glob(SHARD_GLOB))]
        manifest = {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "num_shards": len(entries), "num_scenes": sum(e["num_scenes"] for e in entries),
            "shards": entries,
            **{k: v for k, v in old.items() if k not in ("format", "format_version", "num_shards", "num_scenes", "shards")},
            **(extra or {}),
        }
        write_json_atomic(directory / MANIFEST_NAME, manifest)
        return manifest
