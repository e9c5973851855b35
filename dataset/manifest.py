"""``manifest.json``: the list of shards in a directory, with scene counts and checksums.

Several processes (cluster array jobs) may finish shards in the same directory at
the same time. :func:`update_manifest` therefore rebuilds the manifest from the
shard files present, under an exclusive ``flock`` on ``.manifest.lock``, and
writes it atomically.

Checksums are written once, when a shard is finished (``finished=[name]``), and
never re-blessed: an entry already in the manifest is kept as it is even when its
file changed since, so ``validate --deep`` keeps flagging a modified shard. Only
files the manifest does not list yet (a lost manifest) get a new entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import h5py

from .errors import ShardFormatError
from .reader import SHARD_GLOB
from .schema import FORMAT_NAME, FORMAT_VERSION

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".manifest.lock"
#: Temporary files (``<name>.tmp-<host>-<pid>``) of writers that have not finished yet.
TMP_GLOB = "*.tmp-*"


def tmp_suffix() -> str:
    """``.tmp-<host>-<pid>``: names the process writing a temporary file, so a later run can tell
    a dead writer's leftover (removable) from a live one's (see `stale_tmp_files`)."""
    return f".tmp-{socket.gethostname()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tmp_files(directory: str | os.PathLike) -> list[Path]:
    """Every temporary file in ``directory`` (finished or dead writers never leave one behind)."""
    return sorted(p for p in Path(directory).glob(TMP_GLOB) if p.is_file())


def stale_tmp_files(directory: str | os.PathLike) -> list[Path]:
    """Temporary files whose writer is gone: written on this host by a process that no longer
    runs (or named in the older ``.tmp-<pid>`` form). Files of other hosts are never touched."""
    host = socket.gethostname()
    out = []
    for p in tmp_files(directory):
        tag = p.name.rsplit(".tmp-", 1)[1]
        who, _, pid = tag.rpartition("-") if "-" in tag else (host, "", tag)
        if who == host and pid.isdigit() and not _pid_alive(int(pid)):
            out.append(p)
    return out


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace`` (the temp file is
    removed when writing fails, e.g. on a full disk)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}{tmp_suffix()}")
    try:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed manifest of ``directory``, or None when it has none."""
    p = Path(directory) / MANIFEST_NAME
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ShardFormatError(p, None, f"not valid JSON ({e.msg}, line {e.lineno}); run the same render-scenes "
                               "command with --resume to rebuild it from the shards") from None


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


def shard_entry(path: Path) -> dict[str, Any]:
    """Manifest entry of one finished shard: scene range, size and SHA-256 of its bytes now."""
    st = path.stat()
    with h5py.File(path, "r") as f:
        num = int(f.attrs["num_scenes"])
        first = int(f.attrs["first_scene"])
    return {"file": path.name, "num_scenes": num, "first_scene": first, "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(path)}


def update_manifest(directory: str | os.PathLike, extra: dict[str, Any] | None = None,
                    finished: Iterable[str] = ()) -> dict[str, Any]:
    """Rebuild ``manifest.json`` from the shards now in ``directory`` (locked, atomic). Returns it.

    ``finished``: names of shards just (re)written, whose entries are computed anew;
    every other listed entry is kept as it is (see the module docstring).
    """
    directory = Path(directory)
    finished = set(finished)
    with manifest_lock(directory):
        old = read_manifest(directory) or {}
        prev = {e["file"]: e for e in old.get("shards", [])}
        entries = [prev[p.name] if p.name in prev and p.name not in finished else shard_entry(p)
                   for p in sorted(directory.glob(SHARD_GLOB))]
        manifest = {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "num_shards": len(entries), "num_scenes": sum(e["num_scenes"] for e in entries),
            "shards": entries,
            **{k: v for k, v in old.items() if k not in ("format", "format_version", "num_shards", "num_scenes", "shards")},
            **(extra or {}),
        }
        write_json_atomic(directory / MANIFEST_NAME, manifest)
        return manifest
