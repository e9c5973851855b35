"""Photos decoded once per photo set: a small cache that every render process maps instead of decoding.

A *photo set* is the photo folder ``appearance.photo_dir`` at one size: its usable files
(`synthssl.render.photos.scan_photos`), each decoded and shrunk to at most ``max_side`` pixels
per side (`synthssl.render.photos.load_photo`: what a texture crop needs), RGB uint8. Its cache is
a folder ``photos-<key>`` under `cache_root` holding

* ``pixels.npy``: every photo's pixels one after the other, uint8 [total];
* ``index.json``: the folder, ``max_side``, and per usable file (path relative to the folder,
  in `scan_photos` order) its offset in ``pixels.npy`` and its height and width, offset -1 for a
  file whose pixels do not decode.

``key`` is a hash of the cache format, ``max_side``, the folder and every image file's relative
path, size and modification time (`photo_set_key`: a listing and a ``stat`` per file, nothing is
read), so a photo changed, added or removed makes another set. A set is built once, by the first
process that needs it (the render's parent, before its workers start), with the decoding spread
over threads, and written as a cache folder (`synthssl.render.cache_folder`: a temporary folder
renamed into place, then only read). `open_photo_set` maps ``pixels.npy`` read-only: the workers
share one copy in the page cache, and a worker's start-up does not grow with the number of photos.

`PhotoSet.pick` chooses exactly as `synthssl.render.photos.pick_photo` does (a file whose pixels
do not decode gives way to the next one), so a scene's textures do not depend on whether its
photos came from the cache. When the cache folder cannot be written, the process keeps the set
in memory (built by itself) and says so once.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache_folder import cache_root, open_cached, read_cache_folder, stat_key, write_cache_folder
from .photos import PHOTO_SUFFIXES, load_photo, scan_photos

#: The format of a cached photo set; part of its key.
CACHE_VERSION = 1


def photo_set_key(folder: str, max_side: int) -> str:
    """32 hex: the photo set of ``folder`` at ``max_side`` (see the module docstring)."""
    root = Path(folder).expanduser().resolve()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    header = f"synthssl photo set v{CACHE_VERSION}\0{int(max_side)}\0{root}"
    return stat_key(header, ((p.relative_to(root).as_posix(), p) for p in files))


@dataclass(frozen=True)
class PhotoSet:
    """The decoded photos of one photo set (see the module docstring)."""

    folder: str
    files: tuple[str, ...]
    """the usable files (absolute paths), in `scan_photos` order."""
    offsets: np.ndarray
    """int64 [N]: where each file's pixels start in ``pixels``; -1 when they do not decode."""
    shapes: np.ndarray
    """int64 [N, 2]: each photo's height and width (0, 0 when it does not decode)."""
    pixels: np.ndarray
    """uint8 [total]: every photo's RGB pixels, row-major, one after the other (mapped from the
    cache file, or in memory)."""

    def __len__(self) -> int:
        return len(self.files)

    def image(self, j: int) -> np.ndarray | None:
        """uint8 RGB [h, w, 3] of ``files[j]`` (a read-only view); None when it does not decode."""
        start = int(self.offsets[j])
        if start < 0:
            return None
        h, w = (int(x) for x in self.shapes[j])
        return self.pixels[start : start + h * w * 3].reshape(h, w, 3)

    def pick(self, j: int) -> np.ndarray:
        """``files[j]``'s photo, or the next one (wrapping) that decodes; ValueError naming
        ``appearance.photo_dir`` when none does."""
        for k in range(len(self)):
            img = self.image((j + k) % len(self))
            if img is not None:
                return img
        raise ValueError(f"appearance.photo_dir: none of the {len(self)} photos under {self.folder} can be decoded")


def decode_photo_set(folder: str, max_side: int, threads: int | None = None) -> PhotoSet:
    """Decode the usable photos of ``folder`` (in memory), ``threads`` at a time (default: one per
    CPU; OpenCV decodes without holding the interpreter lock)."""
    scan = scan_photos(folder)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, threads or cpus)) as pool:
        images = list(pool.map(lambda f: load_photo(f, int(max_side)), scan.usable))
    offsets = np.full(len(images), -1, np.int64)
    shapes = np.zeros((len(images), 2), np.int64)
    start = 0
    for j, img in enumerate(images):
        if img is not None:
            offsets[j], shapes[j] = start, img.shape[:2]
            start += img.size
    pixels = np.empty(start, np.uint8)
    for j, img in enumerate(images):
        if img is not None:
            pixels[offsets[j] : offsets[j] + img.size] = img.reshape(-1)
    return PhotoSet(scan.folder, scan.usable, offsets, shapes, pixels)


def write_photo_set(photos: PhotoSet, max_side: int, dest: Path) -> None:
    """Write ``photos`` as the cache folder ``dest`` (`cache_folder.write_cache_folder`: a temporary
    folder renamed into place; OSError when it cannot be written, nothing left behind)."""
    index = {
        "version": CACHE_VERSION,
        "folder": photos.folder,
        "max_side": int(max_side),
        "files": [Path(f).relative_to(photos.folder).as_posix() for f in photos.files],
        "offsets": photos.offsets.tolist(),
        "shapes": photos.shapes.tolist(),
    }
    write_cache_folder(dest, index, {"pixels": photos.pixels})


def read_photo_set(path: Path) -> PhotoSet:
    """The cached photo set in the folder ``path``, its pixels mapped read-only."""
    index, arrays = read_cache_folder(path, CACHE_VERSION, ["pixels"])
    pixels = arrays["pixels"]
    files = tuple(str(Path(index["folder"]) / f) for f in index["files"])
    offsets = np.asarray(index["offsets"], np.int64)
    shapes = np.asarray(index["shapes"], np.int64).reshape(-1, 2)
    if len(offsets) != len(files) or len(shapes) != len(files) or pixels.dtype != np.uint8:
        raise ValueError(f"{path}: index and pixels disagree")
    return PhotoSet(index["folder"], files, offsets, shapes, pixels)


@functools.lru_cache(maxsize=4)
def open_photo_set(folder: str, max_side: int) -> PhotoSet:
    """The photo set of ``folder`` at ``max_side``: mapped from its cache, which is built first when
    missing (see the module docstring). FileNotFoundError naming ``appearance.photo_dir`` when the
    folder is missing or holds no image file."""
    scan_root = Path(folder).expanduser()
    if not scan_root.is_dir():
        raise FileNotFoundError(f"appearance.photo_dir: {scan_root} is not a folder")
    return open_cached(
        cache_root() / f"photos-{photo_set_key(folder, max_side)}",
        read_photo_set,
        lambda: decode_photo_set(folder, max_side),
        lambda photos, dest: write_photo_set(photos, max_side, dest),
        "photo cache",
        "decodes the photos",
    )


__all__ = [
    "CACHE_VERSION",
    "PhotoSet",
    "photo_set_key",
    "decode_photo_set",
    "write_photo_set",
    "read_photo_set",
    "open_photo_set",
]
