"""Labeled images from an ImageFolder tree: ``ROOT/<class name>/<image file>``.

Two layouts are accepted:
- ``ROOT/train/<class>/*`` and ``ROOT/val/<class>/*`` (or ``test``): the given split;
- ``ROOT/<class>/*``: a deterministic per-class hold-out (every image's split depends
  only on its sorted position within its class and ``test_fraction``).

Images are decoded with OpenCV, converted to RGB, resized so that the shorter side is
``size`` pixels (area interpolation) and centre-cropped to ``size x size``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from synthssl.core.console import progress as console_progress
from synthssl.train.eval.labeled_images import LabeledImages

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "list_images", "read_rgb_square"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_images(folder: Path) -> list[Path]:
    """Image files directly or recursively under ``folder``, sorted by path."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_rgb_square(path: Path, size: int) -> np.ndarray:
    """Decode ``path`` to uint8 RGB [size, size, 3] (shorter side resize, centre crop)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode image {path}")
    h, w = bgr.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    resized = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y0, x0 = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(resized[y0 : y0 + size, x0 : x0 + size, ::-1])


def _class_files(root: Path) -> dict[str, list[Path]]:
    classes = sorted(d for d in root.iterdir() if d.is_dir())
    files = {d.name: list_images(d) for d in classes}
    files = {name: paths for name, paths in files.items() if paths}
    if not files:
        raise ValueError(f"image folder {root}: no class sub-folders with images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def load_image_folder(
    root: str | Path, split: str = "train", size: int = 64, test_fraction: float = 0.3
) -> LabeledImages:
    """Load ``split`` ("train" or "test") of the ImageFolder tree at ``root``.

    Returns uint8 RGB images [N, size, size, 3]; class index = position of the class
    folder name in sorted order (over the train split's folders in the split layout).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if split not in ("train", "test"):
        raise ValueError(f"image folder split must be 'train' or 'test', got {split!r}")
    held_out = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and held_out is not None:
        class_names = tuple(_class_files(root / "train"))
        files = _class_files(root / "train" if split == "train" else held_out)
        unknown = sorted(set(files) - set(class_names))
        if unknown:
            raise ValueError(f"image folder {held_out}: classes {unknown} are not in {root / 'train'}")
        items = [(p, class_names.index(c)) for c, paths in files.items() for p in paths]
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"image folder test_fraction must be in (0, 1), got {test_fraction}")
        files = _class_files(root)
        class_names = tuple(files)
        items = []
        for label, paths in enumerate(files.values()):
            n_test = max(1, round(len(paths) * test_fraction)) if len(paths) > 1 else 0
            # Every k-th image is held out, so the split does not depend on any RNG.
            test_idx = set(np.linspace(0, len(paths) - 1, n_test).round().astype(int).tolist()) if n_test else set()
            items += [(p, label) for i, p in enumerate(paths) if (i in test_idx) == (split == "test")]
    if not items:
        raise ValueError(f"image folder {root}: split {split!r} is empty")
    images = np.stack(
        [read_rgb_square(p, size) for p, _ in console_progress(items, f"reading {root.name}/{split}", unit="image")]
    )
    labels = np.array([label for _, label in items], dtype=np.int64)
    return LabeledImages(images, labels, class_names, name=f"image-folder:{root.name}/{split}")
