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
