"""IDX parsing, Fashion-MNIST loading and ImageFolder trees."""

import gzip
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthssl.train.eval.benchmarks import load_benchmark
from synthssl.train.eval.fashion_mnist import DEFAULT_FASHION_MNIST_ROOT, load_fashion_mnist
from synthssl.train.eval.idx import IDXFormatError, read_idx
from synthssl.train.eval.image_folder import load_image_folder


def _write_idx(path: Path, array: np.ndarray, code: int = 0x08) -> None:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


def test_idx_roundtrip_uint8_and_int32(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), images)
    big = np.array([1, -2, 70000], dtype=np.int32)
    _write_idx(tmp_path / "b.gz", big, code=0x0C)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), big)


def test_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)  # 3 of 10 bytes
    with pytest.raises(IDXFormatError, match="bad.gz.*payload"):
        read_idx(bad)
    with pytest.raises(FileNotFoundError, match="missing"):
        read_idx(tmp_path / "missing.gz")


def test_fashion_mnist_missing_names_file_and_package(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*dataset-fashion-mnist"):
        load_fashion_mnist("train", tmp_path)


def test_fashion_mnist_from_custom_root(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 9, 3], dtype=np.uint8))
    ds = load_fashion_mnist("test", tmp_path)
    assert ds.images.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(ds.images[..., 0], imgs)
    assert ds.labels.tolist() == [0, 1, 2, 9, 3]
    assert ds.class_names[9] == "Ankle boot"


@pytest.mark.skipif(
    not (DEFAULT_FASHION_MNIST_ROOT / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="dataset-fashion-mnist not installed",
)
def test_installed_fashion_mnist_test_split():
    ds = load_fashion_mnist("test")
    assert ds.images.shape == (10000, 28, 28, 1)
    assert np.bincount(ds.labels).tolist() == [1000] * 10  # the test split is balanced


def _make_tree(root: Path, classes: dict[str, int], size: int = 20) -> None:
    for c, (name, n) in enumerate(classes.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = np.full((size, size + 6, 3), 40 * c + i, dtype=np.uint8)
            cv2.imwrite(str(root / name / f"{i:03d}.png"), img)


def test_image_folder_holdout_is_disjoint_and_labelled(tmp_path):
    _make_tree(tmp_path, {"cat": 10, "dog": 4})
    train = load_image_folder(tmp_path, "train", size=16)
    test = load_image_folder(tmp_path, "test", size=16)
    assert train.class_names == test.class_names == ("cat", "dog")
    assert train.images.shape[1:] == (16, 16, 3)
    assert len(train) + len(test) == 14
    assert np.bincount(test.labels).tolist() == [3, 1]
    # every image is unique (its value encodes class and index): splits are disjoint
    train_vals = set(train.images[:, 0, 0, 0].tolist())
    assert not train_vals & set(test.images[:, 0, 0, 0].tolist())


def test_image_folder_split_layout_and_spec(tmp_path):
    _make_tree(tmp_path / "train", {"a": 3, "b": 3})
    _make_tree(tmp_path / "val", {"b": 2})
    train, test = load_benchmark(f"image-folder:{tmp_path}", folder_image_size=8)
    assert len(train) == 6 and len(test) == 2
    assert test.labels.tolist() == [1, 1]  # "b" keeps its train-split index


def test_unknown_benchmark_spec():
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("imagenet")
