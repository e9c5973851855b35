"""Fashion-MNIST from its gzip IDX files (Debian package ``dataset-fashion-mnist``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthssl.train.eval.idx import read_idx
from synthssl.train.eval.labeled_images import LabeledImages

__all__ = ["DEFAULT_FASHION_MNIST_ROOT", "FASHION_MNIST_CLASSES", "load_fashion_mnist"]

#: Where ``apt-get install dataset-fashion-mnist`` puts the files.
DEFAULT_FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_PREFIX = {"train": "train", "test": "t10k"}


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {root / (stem + '.gz')} not found. Install it with "
        f"`apt-get install dataset-fashion-mnist` (files go to {DEFAULT_FASHION_MNIST_ROOT}) "
        f"or point the fashion-mnist root option at a folder holding the IDX files."
    )


def load_fashion_mnist(split: str = "train", root: str | Path | None = None) -> LabeledImages:
    """Load the Fashion-MNIST ``split`` ("train": 60,000 images, "test": 10,000).

    Returns grayscale uint8 images [N, 28, 28, 1] and int64 labels [N].
    """
    if split not in _PREFIX:
        raise ValueError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else DEFAULT_FASHION_MNIST_ROOT
    images_path = _find(root, f"{_PREFIX[split]}-images-idx3-ubyte")
    labels_path = _find(root, f"{_PREFIX[split]}-labels-idx1-ubyte")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images [N, rows, cols], got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{labels_path}: expected {images.shape[0]} labels, got shape {labels.shape}")
    return LabeledImages(
        images=images[..., None],
        labels=labels.astype(np.int64),
        class_names=FASHION_MNIST_CLASSES,
        name=f"fashion-mnist/{split}",
    )
