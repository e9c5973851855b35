"""Unlabeled real photos from any folder tree (jpg/jpeg/png/webp, found recursively).

Each item is a square uint8 RGB image ``[S,S,3]`` (S = ``base_size``): the photo is
resized (area interpolation) so that its short side is S, and a random S x S square is
cut from it. The resized photo is cached in each worker's memory (up to
``cache_mb`` per process), so a photo folder is decoded about once per worker rather
than once per sample (decoding a large JPEG costs tens of milliseconds). The
training-resolution random resized crops are taken later, batched on the device, in
coordinates of this square (which is what ``ViewBatch.crop_boxes`` refers to for
photos). Randomness comes from ``(seed, rank, position)`` (see `ResumableSampler`), so
it does not depend on the number of workers.

Unreadable or corrupt files are skipped (the next file is used) and counted: each
item carries ``skipped`` (files skipped to produce it); the trainer sums and logs
them. A folder without images is a `FileNotFoundError` naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


def list_photos(root: str | os.PathLike, key: str = "data.photos") -> list[Path]:
    """Sorted image files under `root` (recursive); errors name `key`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{key}: {root} is not a directory (give a folder of jpg/png/webp photos)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"{key}: no .jpg/.jpeg/.png/.webp images under {root}")
    return files


def photo_decodes(path: Path) -> bool:
    """True when ``path`` can be read and decoded as an image (a cheap reduced-size decode)."""
    try:
        return cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8) is not None
    except cv2.error:
        return False


def short_side_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize `image` [h,w,3] so that min(h, w) == size (aspect kept)."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, new, interpolation=interp)


def random_square(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random [size,size,3] window of `image` (whose short side is `size`)."""
    h, w = image.shape[:2]
    y0 = int(rng.integers(0, h - size + 1))
    x0 = int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(image[y0 : y0 + size, x0 : x0 + size])


class PhotoFolder(Dataset):
    """Real photos as square uint8 bases; see the module docstring."""

    def __init__(self, root: str | os.PathLike, base_size: int, seed: int = 0, rank: int = 0, cache_mb: float = 256.0):
        self.root = Path(root)
        self.files = list_photos(root)
        self.base_size = int(base_size)
        self.seed, self.rank = int(seed), int(rank)
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: dict[int, np.ndarray] = {}
        self._cached_bytes = 0
        self._bad: set[int] = set()  # files that failed to decode in this process

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, path: Path) -> np.ndarray | None:
        # Reduced (1/4) decoding is much faster for large JPEGs and loses nothing we keep
        # when the reduced image still covers base_size; otherwise decode at full size.
        try:
            probe = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
            if probe is not None and min(probe.shape[:2]) >= self.base_size:
                return cv2.cvtColor(probe, cv2.COLOR_BGR2RGB)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        except cv2.error:
            return None
        if image is None or image.ndim != 3 or min(image.shape[:2]) < 2:
            return None
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def _resized(self, i: int) -> np.ndarray | None:
        cached = self._cache.get(i)
        if cached is not None or i in self._bad:
            return cached
        image = self._decode(self.files[i])
        if image is None:
            self._bad.add(i)
            return None
        image = short_side_resize(image, self.base_size)
        if self._cached_bytes + image.nbytes <= self.cache_bytes:
            self._cache[i] = image
            self._cached_bytes += image.nbytes
        return image

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, position = key if isinstance(key, tuple) else (key, key)
        rng = np.random.default_rng([self.seed, self.rank, position, 7])
        for skipped in range(len(self.files)):
            i = (index + skipped) % len(self.files)
            image = self._resized(i)
            if image is not None:
                return {
                    "rgb": random_square(image, self.base_size, rng),
                    "photo_index": np.int64(i),
                    "skipped": np.int64(skipped),
                }
        raise RuntimeError(f"data.photos: none of the {len(self.files)} files under {self.root} could be decoded")
