"""Errors raised when a shard does not match the format contract."""

from __future__ import annotations

from pathlib import Path


class ShardFormatError(ValueError):
    """A shard file (or directory) does not match the synthssl.views format.

    The message always names the file, the field (dataset or attribute) and what
    was expected, e.g. ``shards/shard-00003.h5: dataset 'depth': expected dtype
    float32, found float64``.
    """

    def __init__(self, path: str | Path, field: str | None, problem: str):
        self.path = str(path)
        self.field = field
        self.problem = problem
        where = f"{self.path}: {field}: " if field else f"{self.path}: "
        super().__init__(where + problem)
