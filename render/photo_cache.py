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
over threads; it is written to a temporary folder that is renamed into place (of two processes
building the same set at once, one rename wins and the other's copy is discarded), then only read.
`open_photo_set` maps ``pixels.npy`` read-only (``np.load(mmap_mode="r")``): the workers share one
copy in the page cache, and a worker's start-up does not grow with the number of photos.

`PhotoSet.pick` chooses exactly as `synthssl.render.photos.pick_photo` does (a file whose pixels
do not decode gives way to the next one), so a scene's textures do not depend on whether its
photos came from the cache. When the cache folder cannot be written, the process keeps the set
in memory (built by itself) and says so once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .photos import PHOTO_SUFFIXES, load_photo, scan_photos

log = logging.getLogger("synthssl.render")

#: The format of a cached photo set; part of its key.
CACHE_VERSION = 1
INDEX_NAME = "index.json"
PIXELS_NAME = "pixels.npy"


def cache_root() -> Path:
    """Where synthssl keeps its caches: ``$SYNTHSSL_CACHE_DIR``, else ``$XDG_CACHE_HOME/synthssl``,
    else ``~/.cache/synthssl``."""
    if os.environ.get("SYNTHSSL_CACHE_DIR"):
        return Path(os.environ["SYNTHSSL_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "synthssl"


def photo_set_key(folder: str, max_side: int) -> str:
    """32 hex: the photo set of ``folder`` at ``max_side`` (see the module docstring)."""
    root = Path(folder).expanduser().resolve()
    h = hashlib.sha256(f"synthssl photo set v{CACHE_VERSION}\0{int(max_side)}\0{root}\n".encode())
    for p in sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file()):
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


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
    """Write ``photos`` as the cache folder ``dest``: into a temporary folder beside it, renamed into
    place; when ``dest`` appeared meanwhile (another process), the copy is discarded. OSError when
    the cache cannot be written (nothing is left behind)."""
    tmp = dest.with_name(f".{dest.name}.tmp-{socket.gethostname()}-{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=False)
        np.save(tmp / PIXELS_NAME, photos.pixels)
        index = {
            "version": CACHE_VERSION,
            "folder": photos.folder,
            "max_side": int(max_side),
            "files": [Path(f).relative_to(photos.folder).as_posix() for f in photos.files],
            "offsets": photos.offsets.tolist(),
            "shapes": photos.shapes.tolist(),
        }
        (tmp / INDEX_NAME).write_text(json.dumps(index))
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / INDEX_NAME).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_photo_set(path: Path) -> PhotoSet:
    """The cached photo set in the folder ``path``, its pixels mapped read-only."""
    index = json.loads((path / INDEX_NAME).read_text())
    if index.get("version") != CACHE_VERSION:
        raise ValueError(f"{path / INDEX_NAME}: cache format {index.get('version')!r}, expected {CACHE_VERSION}")
    pixels = np.load(path / PIXELS_NAME, mmap_mode="r")
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
    dest = cache_root() / f"photos-{photo_set_key(folder, max_side)}"
    if (dest / INDEX_NAME).is_file():
        try:
            return read_photo_set(dest)
        except (OSError, ValueError) as exc:
            log.warning("photo cache %s is unreadable (%s); decoding the photos in this process", dest, exc)
            return decode_photo_set(folder, max_side)
    photos = decode_photo_set(folder, max_side)
    try:
        write_photo_set(photos, max_side, dest)
        return read_photo_set(dest)
    except OSError as exc:
        log.warning(
            "cannot write the photo cache in %s (%s); each render process decodes the photos itself "
            "(set SYNTHSSL_CACHE_DIR to a writable folder)",
            dest.parent,
            exc.strerror or exc,
        )
        return photos


__all__ = [
    "CACHE_VERSION",
    "PhotoSet",
    "cache_root",
    "photo_set_key",
    "decode_photo_set",
    "write_photo_set",
    "read_photo_set",
    "open_photo_set",
]
