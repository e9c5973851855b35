"""A folder of small random-texture photos for the trainer's photo inputs (``data.photos``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_photo_folder(folder: Path, count: int = 8, nested: bool = False, corrupt: bool = False) -> Path:
    """Write ``count`` smooth random-texture photos (60-119 px a side, seed 0) into ``folder``.

    ``nested``: alternate between sub-folders ``set0``/``set1`` and between png and jpg (odd
    photos are jpg); else all png at the top. ``corrupt``: add ``set0/broken.jpg`` (nested) or
    ``broken.jpg``, a file no decoder reads. Returns ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        sub = folder / f"set{i % 2}" if nested else folder
        sub.mkdir(exist_ok=True)
        h, w = int(rng.integers(60, 120)), int(rng.integers(60, 120))
        base = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        suffix = "jpg" if nested and i % 2 else "png"
        cv2.imwrite(str(sub / f"photo{i}.{suffix}"), cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC))
    if corrupt:
        (folder / "set0" if nested else folder).joinpath("broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder
