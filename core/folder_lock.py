"""One writer per output folder: an exclusive lock file that names its holder.

A command that writes into a folder for a while (``train-ssl`` into ``train.out``, ``train-ssl
eval`` and ``train-ssl predict`` into their ``out``) holds `FolderLock` on it for its whole life:

- the lock file is ``<folder>/.synthssl.lock``, a JSON object ``{"host", "pid", "command",
  "since"}`` naming the holder (``since``: UTC, ISO 8601);
- taking it is atomic: the file is opened (created if absent) and locked with
  ``flock(LOCK_EX | LOCK_NB)``, then checked to still be the file the path names (a holder that
  released it in between unlinks it: the taker tries again). A second process finds the lock
  taken and gets `FolderInUseError`, whose one-line message names the holder (host, pid,
  command);
- the kernel releases a ``flock`` when its process ends in any way (exit, exception, signal,
  SIGKILL, a crash). A lock file whose ``flock`` is free is therefore *stale*, whatever it says,
  and is taken over. `FolderLock.release` (also ``with``-exit) unlinks the file;
- where the filesystem refuses ``flock`` (ENOLCK, EOPNOTSUPP), the file is created with
  ``O_CREAT | O_EXCL`` and judged by its content: stale when it names this host and a PID that
  is gone; a holder on another host is reported (the message names the file to delete once
  that process is gone).

Torch-free; ``core`` imports no other synthssl package.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from synthssl.core.errors import OutputWriteError

__all__ = ["LOCK_NAME", "FolderInUseError", "LockHolder", "FolderLock", "read_holder"]

#: The lock file inside a locked folder.
LOCK_NAME = ".synthssl.lock"

_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@dataclass(frozen=True)
class LockHolder:
    """Who holds a folder: ``host`` (socket.gethostname()), ``pid``, ``command`` (argv joined), ``since`` (UTC)."""

    host: str
    pid: int
    command: str = ""
    since: str = ""

    def describe(self) -> str:
        """'host node1, pid 4242 (train-ssl demo ...), since 2024-05-01T10:00:00Z'."""
        what = f" ({self.command})" if self.command else ""
        when = f", since {self.since}" if self.since else ""
        return f"host {self.host}, pid {self.pid}{what}{when}"


class FolderInUseError(RuntimeError):
    """Another live process holds the folder's lock; the message (one line) names it and the option."""

    def __init__(self, folder: Path, holder: Optional[LockHolder], option: str, advice: str = ""):
        self.folder, self.holder = folder, holder
        who = holder.describe() if holder is not None else "another process (the lock file names none)"
        super().__init__(
            f"{option}: {folder} is in use by {who}; one process writes a folder at a time: "
            f"{advice or f'wait for it to finish, or give another {option}'}"
        )


def _command() -> str:
    words = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    text = " ".join(words)
    return text if len(text) <= 200 else text[:197] + "..."


def read_holder(path: Path) -> Optional[LockHolder]:
    """The holder a lock file names (None when it is empty, torn or not ours)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(str(data["host"]), int(data["pid"]), str(data.get("command", "")), str(data.get("since", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


class FolderLock:
    """The exclusive lock of one folder (see the module docstring).

    folder: created (with parents) when absent; option: the key or option the folder was given
    by (``train.out``, ``out``), named in the messages; advice: what the message tells the user
    to do; wait_s: how long `acquire` waits for a live holder before giving up; kind: what the
    folder is, in messages ("run folder", "report folder"). `acquire` raises
    `FolderInUseError` when a live process holds it, `OutputWriteError` when the folder cannot be
    created or written.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        option: str = "out",
        advice: str = "",
        wait_s: float = 0.0,
        kind: str = "folder",
    ):
        self.folder, self.kind = Path(folder), kind
        self.option, self.advice, self.wait_s = option, advice, float(wait_s)
        self.created_folder = False
        self._fd: Optional[int] = None
        self._flock = True

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    @property
    def held(self) -> bool:
        return self._fd is not None

    # ------------------------------------------------------------------ take
    def acquire(self) -> "FolderLock":
        """Take the lock (creating the folder when absent; waiting up to ``wait_s`` for a holder); returns self."""
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                return self._acquire_now()
            except FolderInUseError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def _acquire_now(self) -> "FolderLock":
        if self._fd is not None:
            return self
        self._make_folder()
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        holder = LockHolder(socket.gethostname(), os.getpid(), _command(), since)
        for _ in range(50):  # a retry only follows a holder that released (unlinked) the file under us
            fd = self._open_exclusive() if not self._flock else self._open_shared()
            if self._flock:
                locked = self._try_flock(fd)
                if locked is None:  # this filesystem has no flock: O_EXCL and the holder's PID
                    if os.fstat(fd).st_size == 0:  # the empty file just opened names no holder
                        self.path.unlink(missing_ok=True)
                    os.close(fd)
                    self._flock = False
                    continue
                if not locked:
                    os.close(fd)
                    raise FolderInUseError(self.folder, read_holder(self.path), self.option, self.advice)
                if not self._still_named(fd):
                    os.close(fd)
                    continue
            self._fd = fd
            try:
                self._write(holder)
            except OSError as exc:
                self._fd = None
                os.close(fd)
                raise OutputWriteError(self.path, exc) from None
            return self
        raise FolderInUseError(self.folder, read_holder(self.path), self.option, self.advice)

    def _make_folder(self) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise OutputWriteError(self.folder, f"it is a file, not a folder; give a {self.kind}", "write into")
        if not self.folder.exists():
            try:
                self.folder.mkdir(parents=True)
                self.created_folder = True
            except FileExistsError:
                pass
            except OSError as exc:
                raise OutputWriteError(self.folder, exc, f"create the {self.kind}") from None

    def _open_shared(self) -> int:
        """The lock file's descriptor, the file created when absent (flock decides who holds it)."""
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputWriteError(self.folder, exc, "write into") from None

    def _open_exclusive(self) -> int:
        """Without flock: create the file with O_EXCL; an existing one is stale only when its PID is gone here."""
        for _ in range(50):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                holder = read_holder(self.path)
                if holder is None or holder.host != socket.gethostname() or _pid_alive(holder.pid):
                    advice = f"if that process is gone, delete {self.path}"
                    raise FolderInUseError(self.folder, holder, self.option, advice) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
            except OSError as exc:
                raise OutputWriteError(self.folder, exc, "write into") from None
        raise FolderInUseError(self.folder, read_holder(self.path), self.option, self.advice)

    @staticmethod
    def _try_flock(fd: int) -> Optional[bool]:
        """True: locked; False: a live process holds it; None: the filesystem has no flock."""
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in _NO_FLOCK:
                return None
            raise

    def _still_named(self, fd: int) -> bool:
        """True when the path still names the locked file (a releasing holder unlinks it)."""
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def _write(self, holder: LockHolder) -> None:
        data = json.dumps({"host": holder.host, "pid": holder.pid, "command": holder.command, "since": holder.since})
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, (data + "\n").encode("utf-8"), 0)
        os.fsync(self._fd)

    # ------------------------------------------------------------------ move, give back
    def rename_folder(self, target: str | os.PathLike) -> Path:
        """Rename the locked folder to ``target`` (a sibling); the lock moves with it and stays held."""
        target = Path(target)
        self.folder.rename(target)
        self.folder = target
        return target

    def release(self) -> None:
        """Give the lock back: unlink the file (when it is still ours), close it. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if not self._flock or self._still_named(fd):
                self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a folder gone read-only: the free flock marks the file stale anyway
        finally:
            os.close(fd)

    def remove_folder_if_unused(self) -> None:
        """Remove the folder `acquire` created when nothing was written into it (a start that failed)."""
        if self.created_folder and not self.held:
            try:
                self.folder.rmdir()
            except OSError:
                pass

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
