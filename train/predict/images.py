"""Input images of ``train-ssl predict``: listing, decoding, output names.

Any decodable jpg/jpeg/png/webp becomes uint8 RGB [H, W, 3]:
grayscale is replicated to 3 channels; an alpha channel is composited over mid-grey
(128: light and dark content on a transparent background both stay visible);
16-bit images are scaled to 8 bits (x / 257). JPEGs are decoded with their EXIF
orientation applied. A file that OpenCV cannot decode gives ``None`` (the caller
skips it), never an exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from synthssl.train.data.photos import PHOTO_SUFFIXES, list_photos

__all__ = ["list_inputs", "read_rgb", "output_names"]


def list_inputs(path: str | Path) -> tuple[list[Path], Path]:
    """(image files, root) for one image file or a folder tree (sorted, recursive).

    root is the folder that output names are relative to. Errors (missing path, a file
    of another type, a folder without images) are `FileNotFoundError` / `ValueError`
    naming ``images``.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in PHOTO_SUFFIXES:
            raise ValueError(f"images: {path} is not a .jpg/.jpeg/.png/.webp file")
        return [path], path.parent
    if not path.exists():
        raise FileNotFoundError(f"images: {path} does not exist")
    return list_photos(path, key="images"), path


#: The background that transparent pixels are composited over (uint8, every channel).
BACKGROUND = 128


def _composite(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """color uint8 [H, W, C], alpha uint8 [H, W] -> uint8 color over a `BACKGROUND` grey."""
    a = alpha.astype(np.float32)[..., None] / 255.0
    return (color.astype(np.float32) * a + float(BACKGROUND) * (1.0 - a)).round().astype(np.uint8)


def read_rgb(path: str | Path) -> Optional[np.ndarray]:
    """Decode an image file to uint8 RGB [H, W, 3], or None when it cannot be read."""
    path = Path(path)
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    try:
        # IMREAD_COLOR applies EXIF orientation (JPEG); UNCHANGED keeps alpha / gray / 16-bit.
        img = cv2.imread(str(path), cv2.IMREAD_COLOR if jpeg else cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if img is None or img.size == 0 or min(img.shape[:2]) < 2:
        return None
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        return None
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 2:  # gray + alpha
        return np.repeat(_composite(img[..., :1], img[..., 1]), 3, axis=2)
    if img.shape[2] == 4:
        img = _composite(img[..., :3], img[..., 3])
    return np.ascontiguousarray(img[..., 2::-1])


def output_names(files: Sequence[Path], root: Path) -> list[str]:
    """One output folder name per input: its path relative to ``root`` without the suffix
    (``sub/photo``), or with the suffix as ``_ext`` (``sub/photo_png``) where two inputs of
    one folder share a stem."""
    rel = [f.relative_to(root) if f.is_relative_to(root) else Path(f.name) for f in files]
    stems = [r.with_suffix("").as_posix() for r in rel]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    return [s if counts[s] == 1 else f"{s}_{r.suffix.lower().lstrip('.')}" for s, r in zip(stems, rel)]
