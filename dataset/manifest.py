"""``manifest.json`` and per-shard sidecars: the list of shards in a render folder.

Finishing a shard costs O(1) whatever the folder holds: the process that wrote the shard
(renamed into place) writes its *sidecar* ``<shard without .h5>.json`` next to it,
atomically, holding exactly that shard's manifest entry (`shard_entry`: scene range, size,
mtime, SHA-256, ``render_id`` and ``compat``). Nothing lists the folder or rewrites a
shared file per shard.

``manifest.json`` is merged from the sidecars (`index_folder`) when a run ends, and by
``render-scenes index DIR``. A merge lists the shard files, takes each one's sidecar, writes
a missing sidecar from the file itself (a run killed between the rename and the sidecar), and
writes the manifest through a temporary file and ``os.replace``. So it is correct after a kill
and under array jobs on many machines: no cross-machine lock is relied on; a merge only ever
adds what it sees, and running ``index`` once after the last job has finished is
authoritative. A local ``flock`` (when the filesystem supports it) only spares concurrent
merges on one machine redundant work.

Checksums are written once, when a shard is finished, and never re-blessed: a sidecar is
kept as it is even when its file changed since, so ``validate --deep`` keeps flagging a
modified shard.

A merge lists what is on disk: an entry whose shard file is gone is dropped from the new
manifest, and the merge says so in one warning naming the shards.

Shard files may sit in subfolders; an entry's ``file`` is the shard's relpath
(`synthssl.dataset.layout`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import h5py

from .compat import compat_from_attrs, is_complete_entry, render_id_from_attrs
from .errors import ShardFormatError
from .layout import relpath, shard_relpaths, sidecar_path
from .schema import FORMAT_NAME, FORMAT_VERSION, categories_sha256

log = logging.getLogger("synthssl.dataset")

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
    """Every temporary file in ``directory`` and its shard subfolders (finished writers never
    leave one behind), sorted by relative path."""
    directory = Path(directory)
    return sorted(
        (p for p in directory.rglob(TMP_GLOB) if p.is_file()), key=lambda p: p.relative_to(directory).as_posix()
    )


def stale_tmp_files(directory: str | os.PathLike) -> list[Path]:
    """Temporary files whose writer is gone: written on this host by a process that no longer
    runs. Files of other hosts are never touched."""
    host = socket.gethostname()
    out = []
    for p in tmp_files(directory):
        who, _, pid = p.name.rsplit(".tmp-", 1)[1].rpartition("-")
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
        raise ShardFormatError(
            p,
            None,
            f"not valid JSON ({e.msg}, line {e.lineno}); run the same render-scenes "
            "command with --resume to rebuild it from the shards",
        ) from None


@contextmanager
def manifest_lock(directory: str | os.PathLike) -> Iterator[None]:
    """Exclusive lock for merges on this machine (``flock`` on ``.manifest.lock``). Correctness
    never depends on it: where ``flock`` is unsupported (some network filesystems) it is skipped."""
    lock = Path(directory) / LOCK_NAME
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except OSError:  # ENOLCK and friends: merges are idempotent, go ahead unlocked
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def shard_entry(file: str, attrs: Mapping[str, Any], nbytes: int, mtime_ns: int, sha256: str) -> dict[str, Any]:
    """The manifest entry of one shard from its root attributes (h5py's or the writer's own) and
    its file's size (bytes), mtime (ns) and SHA-256 (hex). A shard without provenance attributes
    reads as render id "" (`synthssl.dataset.compat`)."""
    return {
        "file": file,
        "num_scenes": int(attrs["num_scenes"]),
        "first_scene": int(attrs["first_scene"]),
        "bytes": int(nbytes),
        "mtime_ns": int(mtime_ns),
        "sha256": sha256,
        "render_id": render_id_from_attrs(attrs),
        "compat": compat_from_attrs(attrs),
    }


def entry_from_file(directory: Path, path: Path) -> dict[str, Any]:
    """A shard's manifest entry computed from the file itself (opens it and hashes its bytes)."""
    st = path.stat()
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
    return shard_entry(relpath(directory, path), attrs, st.st_size, st.st_mtime_ns, sha256_file(path))


def record_finished(
    directory: str | os.PathLike, path: str | os.PathLike, root_attrs: Mapping[str, Any], sha256: str
) -> dict[str, Any]:
    """Write the sidecar of the shard just renamed into place at ``path`` (its root attributes and
    SHA-256 as the writer produced them). O(1): one stat and one small file, nothing listed or
    re-read whatever the folder holds. Returns the entry."""
    st = os.stat(path)
    entry = shard_entry(relpath(directory, path), root_attrs, st.st_size, st.st_mtime_ns, sha256)
    write_sidecar(path, entry)
    return entry


def read_sidecar(shard_path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar entry of a shard, or None when it is missing, unreadable or incomplete."""
    try:
        entry = json.loads(sidecar_path(shard_path).read_text())
    except (OSError, ValueError):
        return None
    return entry if is_complete_entry(entry) else None


def write_sidecar(shard_path: str | os.PathLike, entry: dict[str, Any]) -> Path:
    """Write a shard's sidecar atomically (after the shard itself is in place). Returns its path."""
    path = sidecar_path(shard_path)
    write_json_atomic(path, entry)
    return path


def _category_tables(directory: Path, entries: list[dict], known: dict[str, list[str]]) -> dict[str, list[str]]:
    """{categories_sha256: names} for the entries' tables: from ``known`` (the previous manifest),
    else read from one shard per table."""
    tables: dict[str, list[str]] = {}
    for e in entries:
        key = e["compat"]["categories_sha256"]
        if key in tables:
            continue
        if key in known and categories_sha256(known[key]) == key:
            tables[key] = list(known[key])
            continue
        with h5py.File(directory / e["file"], "r") as f:
            tables[key] = list(json.loads(_text(f.attrs["category_names"])))
    return tables


def _merge_once(directory: Path, old: dict[str, Any], extra: dict[str, Any] | None) -> tuple[dict, list[str]]:
    """The manifest of the shards ``directory`` holds now (``old``: the previous manifest), and their relpaths."""
    files = shard_relpaths(directory)
    on_disk = set(files)
    listed = [e.get("file") for e in old.get("shards", []) if isinstance(e, dict)]
    gone = sorted(str(f) for f in listed if isinstance(f, str) and f not in on_disk)
    if gone:
        log.warning(
            "%s: %d shard(s) listed in %s are gone (%s); the merged %s no longer lists them (render them "
            "again with the same render-scenes command plus --resume)",
            directory,
            len(gone),
            MANIFEST_NAME,
            ", ".join(gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else ""),
            MANIFEST_NAME,
        )
    entries = []
    for rel in files:
        path = directory / rel
        entry = read_sidecar(path)
        if entry is None or entry.get("file") != rel:
            try:
                entry = entry_from_file(directory, path)
            except (OSError, KeyError, ValueError) as exc:  # not a finished shard: validate flags it
                log.warning(
                    "%s: not listed in %s: cannot be read as a shard (%s); render it again with --resume",
                    path,
                    MANIFEST_NAME,
                    str(exc).splitlines()[0] if str(exc) else exc,
                )
                continue
            write_sidecar(path, entry)
        entries.append(entry)
    manifest = {
        **{k: v for k, v in old.items() if k not in ("num_shards", "num_scenes", "shards", "category_tables")},
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "num_shards": len(entries),
        "num_scenes": sum(e["num_scenes"] for e in entries),
        "category_tables": _category_tables(directory, entries, old.get("category_tables", {})),
        "shards": entries,
        **(extra or {}),
    }
    return manifest, files


def index_folder(directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge the sidecars of ``directory`` into ``manifest.json`` (atomic). Returns the manifest.

    See the module docstring. ``extra``: top-level keys to add (e.g. ``seed``). An unreadable
    manifest is treated as absent (its sidecars hold everything). Repeats the merge while shards
    appeared during it (another job finishing), at most 3 times.
    """
    directory = Path(directory)
    with manifest_lock(directory):
        for _ in range(3):
            try:
                old = read_manifest(directory) or {}
            except ShardFormatError:
                old = {}
            manifest, files = _merge_once(directory, old, extra)
            write_json_atomic(directory / MANIFEST_NAME, manifest)
            if shard_relpaths(directory) == files:
                break
    return manifest


def update_manifest(
    directory: str | os.PathLike, extra: dict[str, Any] | None = None, finished: Iterable[str] = ()
) -> dict[str, Any]:
    """Record the shards ``finished`` (relative paths, just written: their sidecars are written
    from the files) and merge the folder's manifest (`index_folder`). Returns it."""
    directory = Path(directory)
    for rel in finished:
        write_sidecar(directory / rel, entry_from_file(directory, directory / rel))
    return index_folder(directory, extra)
