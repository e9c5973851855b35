"""Can an output be written there? Checked before the expensive work starts, leaving nothing behind.

`check_writable_folder` creates and removes one empty probe file in the folder, or, when the
folder does not exist yet, in its nearest existing ancestor (where it would be created). The
probe is named like every temporary file of the package (``<name>.tmp-<host>-<pid>``), so a
run killed in the middle of the check leaves a file the next run recognises as a dead
writer's. `check_writable_file` does the same for a file's folder and refuses a path that
is a folder. Both raise `OutputWriteError` naming the path and the cause in one line
(``cannot write into the output folder out/a: Read-only file system (EROFS)``).
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from .errors import OutputWriteError

PROBE_NAME = ".write-probe"


def nearest_existing(path: Path) -> Path:
    """``path`` itself when it exists, else its closest existing ancestor."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path) -> None:
    """Create and remove one empty file in the existing ``folder``; raises OSError."""
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    probe = folder / f"{PROBE_NAME}.tmp-{socket.gethostname()}-{os.getpid()}"
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.close(fd)
    finally:
        probe.unlink(missing_ok=True)


def check_writable_folder(folder: str | os.PathLike, what: str = "write into the output folder") -> None:
    """OutputWriteError unless ``folder`` is, or can be created as, a folder this process can write into."""
    folder = Path(folder)
    try:
        _probe(nearest_existing(folder))
    except OSError as exc:
        raise OutputWriteError(folder, exc, what) from None


def check_writable_file(path: str | os.PathLike, what: str = "write") -> None:
    """OutputWriteError unless the file ``path`` can be written (created or replaced): not a folder,
    and its folder writable (or creatable)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        _probe(nearest_existing(path.parent))
    except OSError as exc:
        raise OutputWriteError(path, exc, what) from None


__all__ = ["check_writable_folder", "check_writable_file", "nearest_existing"]
