"""Labeled benchmarks by a one-string spec, as used in configs and on the command line.

Specs:
- ``fashion-mnist`` or ``fashion-mnist:ROOT`` (gzip IDX files, default root
  /usr/share/datasets/fashion-mnist from the Debian package ``dataset-fashion-mnist``);
- ``photo-patches`` or ``photo-patches:ROOT`` (64 px patches of 12 real photographs,
  default root /usr/share/synthssl/photo-patches, unpacked by scripts/setup.sh from the
  Debian package ``lomiri-wallpapers-16.04``,
  see :mod:`synthssl.train.eval.photo_patches`);
- ``image-folder:ROOT`` (ImageFolder tree, see :mod:`synthssl.train.eval.image_folder`);
- ``cifar10``, ``cifar100``, ``stl10``, optionally ``NAME:ROOT`` (torchvision, downloads).
"""

from __future__ import annotations

from synthssl.train.eval.fashion_mnist import load_fashion_mnist
from synthssl.train.eval.image_folder import load_image_folder
from synthssl.train.eval.labeled_images import LabeledImages
from synthssl.train.eval.photo_patches import load_photo_patches
from synthssl.train.eval.torchvision_sets import TORCHVISION_DATASETS, load_torchvision_dataset

__all__ = ["load_benchmark"]


def load_benchmark(spec: str, folder_image_size: int = 64) -> tuple[LabeledImages, LabeledImages]:
    """(train, test) sets named by ``spec``; image-folder images are loaded at
    ``folder_image_size`` pixels square (other sets keep their native size)."""
    name, _, root = spec.partition(":")
    name = name.strip().lower()
    if name == "fashion-mnist":
        return load_fashion_mnist("train", root or None), load_fashion_mnist("test", root or None)
    if name == "photo-patches":
        return load_photo_patches(root or None)
    if name == "image-folder":
        if not root:
            raise ValueError("benchmark spec 'image-folder' needs a root: 'image-folder:/path/to/tree'")
        return (load_image_folder(root, "train", folder_image_size), load_image_folder(root, "test", folder_image_size))
    if name.replace("-", "") in TORCHVISION_DATASETS:
        kwargs = {"root": root} if root else {}
        return load_torchvision_dataset(name, "train", **kwargs), load_torchvision_dataset(name, "test", **kwargs)
    raise ValueError(
        f"unknown benchmark {spec!r}: expected 'fashion-mnist[:ROOT]', 'photo-patches[:ROOT]', "
        f"'image-folder:ROOT' or one of {', '.join(TORCHVISION_DATASETS)}[:ROOT]"
    )
