"""synthssl.dataset: the HDF5 shard format (schema, writer, reader, validation, geometry).

NumPy and h5py only; never imports torch. See ``schema`` for the conventions.
"""

from .errors import MixedShardsError, OpenFilesLimitError, ShardFormatError
from .reader import Shard, ShardCollection, find_shards
from .schema import FORMAT_NAME, FORMAT_VERSION
from .writer import ShardWriter

__all__ = [
    "ShardFormatError",
    "MixedShardsError",
    "OpenFilesLimitError",
    "Shard",
    "ShardCollection",
    "ShardWriter",
    "find_shards",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]
