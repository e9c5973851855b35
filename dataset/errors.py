"""Errors raised when a shard does not match the format contract."""

from __future__ import annotations

from pathlib import Path


class ShardFormatError(ValueError):
    """A shard file (or directory) does not match the synthssl.views format.

    The message always names the file, the field (dataset or attribute) and what
    was expected, e.g. ``shards/shard-00003.h5: dataset 'depth': expected dtype
    float32, found float64``.
    """

    def __init__(self, path: str | Path, field: str | None = None, problem: str | None = None):
        if problem is None:  # a whole message (how DataLoader workers re-raise an error in the main process)
            self.path, self.field, self.problem = "", None, str(path)
            super().__init__(str(path))
            return
        self.path = str(path)
        self.field = field
        self.problem = problem
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + problem)


class MixedShardsError(ShardFormatError):
    """Shards that cannot be read as one data set (different category tables, asset sets, image
    size, views or format version), or the same scenes given twice. The message names two
    conflicting shards, e.g. ``a/shard-00000.h5 and b/shard-00003.h5 differ in categories_sha256
    (3f2a... vs 9c01...): ...``."""


class OpenFilesLimitError(ShardFormatError):
    """A shard could not be opened because the process ran out of file handles (EMFILE/ENFILE).

    Not a corrupt shard: the message names the ``ulimit -n`` limit and the option to lower
    (``max_open_shards``, or the environment variable ``SYNTHSSL_MAX_OPEN_SHARDS``)."""


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
