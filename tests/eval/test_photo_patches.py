"""The photo-patches task: construction (split, filter, determinism) on generated photos,
errors, the spec and CLI flag, and the real task when lomiri-wallpapers-16.04 is installed."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from synthssl.train.eval.benchmarks import load_benchmark
from synthssl.train.eval.config import load_eval_config
from synthssl.train.eval.photo_patches import (
    DEFAULT_PHOTO_PATCHES_ROOT,
    PHOTO_PATCHES_SOURCES,
    PatchTaskConfig,
    build_patch_task,
    layout_patches,
    load_photo_patches,
    patch_std,
    resize_short_side,
)

SMALL = PatchTaskConfig(
    short_side=96, block=32, patch=16, test_fraction=0.25, train_per_class=40, test_per_class=12, min_std=8.0
)


def _photo(seed: int, h: int = 120, w: int = 180) -> np.ndarray:
    """A textured RGB 'photo': per-class tint plus noise (grayscale std ~ 30 everywhere)."""
    rng = np.random.default_rng(seed)
    tint = rng.integers(40, 200, 3)
    return np.clip(tint + rng.normal(0, 35, (h, w, 3)), 0, 255).astype(np.uint8)


def _photos(n: int = 4) -> list[np.ndarray]:
    return [_photo(100 + c, 120 + 10 * c, 180 - 15 * c) for c in range(n)]  # landscape, square-ish, ...


def test_shapes_labels_and_balance():
    train, test = build_patch_task(_photos(), ["a", "b", "c", "d"], SMALL, seed=0)
    assert train.images.shape == (4 * 40, 16, 16, 3) and test.images.shape == (4 * 12, 16, 16, 3)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == [40] * 4
    assert np.bincount(test.labels).tolist() == [12] * 4
    assert train.class_names == test.class_names == ("a", "b", "c", "d")
    assert (train.name, test.name) == ("photo-patches/train", "photo-patches/test")


def test_construction_is_deterministic_per_seed_and_per_class():
    photos = _photos()
    a_train, a_test = build_patch_task(photos, list("abcd"), SMALL, seed=3)
    b_train, b_test = build_patch_task(photos, list("abcd"), SMALL, seed=3)
    np.testing.assert_array_equal(a_train.images, b_train.images)
    np.testing.assert_array_equal(a_test.images, b_test.images)
    c_train, _ = build_patch_task(photos, list("abcd"), SMALL, seed=4)
    assert not np.array_equal(a_train.images, c_train.images)
    # class 0 only depends on its own photo and the seed
    other = [photos[0], _photo(999), photos[2], photos[3]]
    d_train, _ = build_patch_task(other, list("abcd"), SMALL, seed=3)
    np.testing.assert_array_equal(d_train.images[d_train.labels == 0], a_train.images[a_train.labels == 0])
    assert not np.array_equal(d_train.images[d_train.labels == 1], a_train.images[a_train.labels == 1])


@pytest.mark.parametrize("shape", [(96, 150), (200, 96), (96, 96)])
def test_train_and_test_patches_share_no_pixel(shape):
    rgb = _photo(7, *shape)
    layout = layout_patches(rgb, SMALL, np.random.default_rng([0, 0]))
    k = len(layout.blocks)
    assert k == (shape[0] // 32) * (shape[1] // 32)
    assert layout.test_block.sum() == round(0.25 * k)
    p = SMALL.patch
    for split, origins in (("train", layout.train), ("test", layout.test)):
        assert len({tuple(o) for o in origins.tolist()}) == len(origins), f"duplicate {split} patch"
        # every patch lies inside a single block of its own split
        inside = (
            (origins[:, None, :] >= layout.blocks[None])
            & (origins[:, None, :] + p <= layout.blocks[None] + SMALL.block)
        ).all(-1)
        assert (inside.sum(1) == 1).all()
        assert (layout.test_block[inside.argmax(1)] == (split == "test")).all()
    test_mask = np.zeros(shape, bool)
    for y, x in layout.test.tolist():
        test_mask[y : y + p, x : x + p] = True
    assert not any(test_mask[y : y + p, x : x + p].any() for y, x in layout.train.tolist())


def test_flat_patches_are_dropped_and_std_is_exact():
    rgb = _photo(1, 96, 192)
    rgb[:, :96] = 128  # left half flat: no patch may come from there
    layout = layout_patches(rgb, SMALL, np.random.default_rng(0))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    for origins in (layout.train, layout.test):
        assert (origins[:, 1] >= 96 - SMALL.patch + 1).all()
        std = patch_std(gray, origins, SMALL.patch)
        expected = [gray[y : y + 16, x : x + 16].astype(np.float64).std() for y, x in origins.tolist()]
        np.testing.assert_allclose(std, expected, atol=1e-6)
        assert (std >= SMALL.min_std).all()


def test_too_flat_photo_and_bad_config_raise():
    with pytest.raises(ValueError, match="'flat'.*grayscale std"):
        build_patch_task([np.full((96, 96, 3), 90, np.uint8), _photo(2)], ["flat", "ok"], SMALL)
    with pytest.raises(ValueError, match="patch <= block"):
        PatchTaskConfig(block=32, patch=64)


def test_resize_short_side_keeps_aspect():
    assert resize_short_side(np.zeros((300, 450, 3), np.uint8), 100).shape == (100, 150, 3)
    assert resize_short_side(np.zeros((50, 40, 3), np.uint8), 80).shape == (100, 80, 3)


def test_missing_photos_name_the_package(tmp_path):
    with pytest.raises(
        FileNotFoundError,
        match=r"Bridge_by_Sander_Klootwijk\.jpg.*setup.sh.*"
        r"lomiri-wallpapers-16\.04",
    ):
        load_photo_patches(tmp_path)
    with pytest.raises(FileNotFoundError, match="lomiri-wallpapers-16.04"):
        load_benchmark(f"photo-patches:{tmp_path}")


def test_files_are_checked_against_the_package(tmp_path):
    for c, source in enumerate(PHOTO_PATCHES_SOURCES):
        cv2.imwrite(str(tmp_path / source.file), _photo(c, 64, 96), [cv2.IMWRITE_JPEG_QUALITY, 95])
    with pytest.raises(ValueError, match="SHA-256"):
        load_photo_patches(tmp_path)
    small = PatchTaskConfig(short_side=64, block=32, patch=16, train_per_class=5, test_per_class=2)
    train, test = load_photo_patches(tmp_path, config=small, verify=False)
    assert train.images.shape == (12 * 5, 16, 16, 3) and len(test) == 12 * 2
    assert train.name.startswith("photo-patches-") and train.name.endswith("/train")  # non-default config


def test_cli_key_selects_the_spec():
    def benchmarks(*argv):
        return load_eval_config(None, ["backbone=b", "out=o", *argv]).benchmarks

    assert benchmarks("benchmarks=[photo-patches]") == ["photo-patches"]
    assert benchmarks("benchmarks=[photo-patches:/x]") == ["photo-patches:/x"]
    assert benchmarks() == []


def check_real_task(root: Path) -> None:
    """The real task from the package's files (called by the test below when installed)."""
    train, test = load_photo_patches(root)
    assert train.images.shape == (3600, 64, 64, 3) and test.images.shape == (1200, 64, 64, 3)
    assert np.bincount(train.labels).tolist() == [300] * 12
    assert np.bincount(test.labels).tolist() == [100] * 12
    assert train.class_names[0] == "bridge" and len(set(train.class_names)) == 12
    # no test patch is also a train patch (byte-identical)
    train_hashes = {hash(img.tobytes()) for img in train.images}
    assert not any(hash(img.tobytes()) in train_hashes for img in test.images)
    # the patches are textured real-photo content, not flat
    assert train.images.reshape(len(train), -1).std(1).min() > 4
    again, _ = load_photo_patches(root)
    np.testing.assert_array_equal(again.images, train.images)


def test_sources_are_disjoint_from_the_training_photos():
    # training uses /usr/share/backgrounds/mate (mate-backgrounds); the task reads top-level files only
    assert all("/" not in s.file for s in PHOTO_PATCHES_SOURCES)
    assert len({s.file for s in PHOTO_PATCHES_SOURCES}) == len({s.name for s in PHOTO_PATCHES_SOURCES}) == 12


@pytest.mark.slow
@pytest.mark.skipif(
    not (DEFAULT_PHOTO_PATCHES_ROOT / PHOTO_PATCHES_SOURCES[0].file).is_file(),
    reason="lomiri-wallpapers-16.04 not installed",
)
def test_installed_photo_patches():
    check_real_task(DEFAULT_PHOTO_PATCHES_ROOT)
