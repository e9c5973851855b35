"""Errors of the plumbing every command shares: an output that cannot be written, and its cause in one line."""

from __future__ import annotations

from pathlib import Path


class OutputWriteError(RuntimeError):
    """An output file could not be written (full disk, no permission, read-only filesystem...).

    The message names the file and the cause in one line, e.g. ``cannot write
    runs/a/checkpoint.pt: No space left on device (ENOSPC); the temporary file was
    removed``.
    """

    def __init__(self, path: str | Path, cause: BaseException | str, what: str = "write"):
        self.path = str(path)
        self.cause = describe_cause(cause)
        super().__init__(f"cannot {what} {self.path}: {self.cause}")


def describe_cause(cause: BaseException | str) -> str:
    """'No space left on device (ENOSPC)' for an OSError, the first line of the message otherwise."""
    import errno
    import os
    import re

    if isinstance(cause, OSError) and cause.errno in errno.errorcode:
        return f"{os.strerror(cause.errno)} ({errno.errorcode[cause.errno]})"
    code = re.search(r"errno = (\d+)", str(cause))  # h5py/HDF5 put the C errno in the message
    if code and int(code.group(1)) in errno.errorcode:
        return f"{os.strerror(int(code.group(1)))} ({errno.errorcode[int(code.group(1))]})"
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


def os_error_in(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (itself, or one in its cause/context chain), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def write_failure(exc: BaseException, folder: str | Path) -> BaseException | str:
    """The cause of a failed write: the OSError behind ``exc``, or ENOSPC when ``folder``'s disk is full
    (libraries such as torch.save report a full disk as a bare RuntimeError), else ``exc`` itself."""
    import errno
    import os
    import shutil

    found = os_error_in(exc)
    if found is not None:
        return found
    try:
        if shutil.disk_usage(folder).free < (1 << 20):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError:
        pass
    return exc
