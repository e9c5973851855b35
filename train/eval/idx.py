"""Reader for the IDX file format used by (Fashion-)MNIST, gzip-compressed or plain.

An IDX file is a big-endian header followed by raw data::

    bytes 0-1: zero, byte 2: element type code, byte 3: number of dimensions D,
    then D big-endian uint32 sizes, then prod(sizes) elements in C order.

Only the element types that occur in practice are supported (uint8, int8, int16,
int32, float32, float64). Files whose name ends in ``.gz`` are decompressed.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

__all__ = ["IDXFormatError", "read_idx"]

#: IDX type code -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class IDXFormatError(ValueError):
    """The file is not a valid IDX file; the message names the file and the problem."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into an array of its stored shape.

    Returns a native-endian array (uint8 images come back as uint8 [N, rows, cols];
    label files as uint8 [N]). Raises FileNotFoundError if the file is missing and
    IDXFormatError if the header or payload size is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise IDXFormatError(f"{path}: cannot read/decompress: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IDXFormatError(f"{path}: not an IDX file (expected two zero magic bytes)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise IDXFormatError(f"{path}: unsupported IDX element type 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise IDXFormatError(f"{path}: truncated header ({ndim} dimensions announced)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(raw) - header_end
    if payload != expected:
        raise IDXFormatError(f"{path}: payload has {payload} bytes, header shape {shape} of {dtype} needs {expected}")
    data = np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)
