"""The photos of ``appearance.photo_dir``: which are used, which are skipped, and loading one.

`scan_photos` lists a folder's image files (`PHOTO_SUFFIXES`, any depth, sorted by path) and
splits them by their signature (``cv2.haveImageReader``: a few header bytes are read, nothing
is decoded) into usable files and undecodable ones (a text file named ``.jpg``, an empty file,
a format OpenCV cannot read). Every process of a render (the parent, each worker) computes the
same split from the same folder, so the photo a scene draws does not depend on the workers.

`check_photo_dir` is the render's check before anything is rendered: the undecodable files are
skipped and listed in one warning line, and a folder with no usable photo is a `ConfigError`
naming ``appearance.photo_dir``.

A file with a valid header whose pixels do not decode (a truncated download) is found only
when it is loaded: `load_photo` returns None for it and warns once per process, naming it, and
`pick_photo` takes the next usable file of the list instead (wrapping around), so the choice
still depends only on the folder's contents.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import ConfigError

log = logging.getLogger("synthssl.render")

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Undecodable files named in the warning; the rest are counted.
NAMED = 5


@dataclass(frozen=True)
class PhotoScan:
    """The image files of a photo folder: ``usable`` and ``undecodable`` paths, each sorted."""

    folder: str
    usable: tuple[str, ...]
    undecodable: tuple[str, ...]


@functools.lru_cache(maxsize=4)
def scan_photos(folder: str) -> PhotoScan:
    """The image files under ``folder`` split by signature (module docstring); FileNotFoundError
    naming ``appearance.photo_dir`` when it is not a folder or holds no image file."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"appearance.photo_dir: {root} is not a folder")
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"appearance.photo_dir: {root} holds no {'/'.join(PHOTO_SUFFIXES)} images")
    readable = {f: bool(cv2.haveImageReader(f)) for f in files}
    return PhotoScan(str(root), tuple(f for f in files if readable[f]), tuple(f for f in files if not readable[f]))


def check_photo_dir(folder: str) -> PhotoScan:
    """The render's check of its photo folder (module docstring): warns listing the undecodable
    files; ConfigError when none is usable."""
    try:
        scan = scan_photos(folder)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    bad = [str(Path(f).relative_to(scan.folder)) for f in scan.undecodable]
    if not scan.usable:
        raise ConfigError(
            f"appearance.photo_dir: none of the {len(bad)} image files under {scan.folder} can be decoded "
            f"({_named(bad)}); give a folder of readable jpg/png photos or set appearance.texture_weights.photo=0"
        )
    if bad:
        log.warning(
            "appearance.photo_dir: skipping %d of %d image files under %s that cannot be decoded: %s",
            len(bad),
            len(bad) + len(scan.usable),
            scan.folder,
            _named(bad),
        )
    return scan


def _named(names: list[str]) -> str:
    return ", ".join(names[:NAMED]) + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")


@functools.lru_cache(maxsize=64)
def load_photo(path: str, max_side: int) -> np.ndarray | None:
    """uint8 RGB [h, w, 3] of the image ``path``, shrunk to at most ``max_side`` pixels per side;
    None (after one warning in this process) when its pixels cannot be decoded."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        log.warning("appearance.photo_dir: cannot decode %s; using the next photo instead", path)
        return None
    s = max_side / max(img.shape[:2])
    if s < 1:
        img = cv2.resize(
            img, (max(int(img.shape[1] * s), 1), max(int(img.shape[0] * s), 1)), interpolation=cv2.INTER_AREA
        )
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def pick_photo(files: tuple[str, ...], j: int, max_side: int) -> np.ndarray:
    """The photo ``files[j]``, or the next one (wrapping) that decodes; ValueError naming
    ``appearance.photo_dir`` when none does."""
    for k in range(len(files)):
        img = load_photo(files[(j + k) % len(files)], max_side)
        if img is not None:
            return img
    raise ValueError(f"appearance.photo_dir: none of the {len(files)} photos can be decoded")


__all__ = ["PHOTO_SUFFIXES", "PhotoScan", "scan_photos", "check_photo_dir", "load_photo", "pick_photo"]
