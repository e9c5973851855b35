"""Standard labeled benchmarks through torchvision (needs internet for the first download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthssl.train.eval.labeled_images import LabeledImages

__all__ = ["TORCHVISION_DATASETS", "DatasetUnavailableError", "load_torchvision_dataset"]

#: Names accepted by :func:`load_torchvision_dataset`.
TORCHVISION_DATASETS = ("cifar10", "cifar100", "stl10")


class DatasetUnavailableError(RuntimeError):
    """The dataset is not on disk and cannot be downloaded; the message says what to do."""


def load_torchvision_dataset(
    name: str, split: str = "train", root: str | Path = "~/.cache/synthssl/datasets", download: bool = True
) -> LabeledImages:
    """Load CIFAR-10/100 or STL-10 (``split`` "train" or "test") as uint8 RGB [N, H, W, 3].

    The data are downloaded into ``root`` on first use; without network access the
    error says so and names the folder to fill by hand.
    """
    import torchvision.datasets as tvd

    key = name.lower().replace("-", "")
    if key not in TORCHVISION_DATASETS:
        raise ValueError(f"unknown torchvision dataset {name!r}; choose one of {', '.join(TORCHVISION_DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"torchvision dataset split must be 'train' or 'test', got {split!r}")
    root = Path(root).expanduser()
    try:
        if key == "stl10":
            ds = tvd.STL10(str(root), split=split, download=download)
            images = np.ascontiguousarray(ds.data.transpose(0, 2, 3, 1))  # [N,3,96,96] -> NHWC
            labels, classes = np.asarray(ds.labels), ds.classes
        else:
            cls = tvd.CIFAR10 if key == "cifar10" else tvd.CIFAR100
            ds = cls(str(root), train=split == "train", download=download)
            images, labels, classes = np.asarray(ds.data), np.asarray(ds.targets), ds.classes
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise DatasetUnavailableError(
            f"torchvision dataset {name!r} is not in {root} and could not be downloaded ({exc}). "
            f"Without internet access, copy the dataset archive into {root} or use "
            f"benchmarks=[fashion-mnist] or benchmarks=[image-folder:DIR] instead."
        ) from exc
    return LabeledImages(images.astype(np.uint8), labels.astype(np.int64), tuple(classes), name=f"{key}/{split}")
