"""Data: rank sharding and resumable positions, held-out split, photo folders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from helpers.train_overrides import tiny_overrides

from synthssl.train.config import load_config
from synthssl.train.data.photos import PhotoFolder, list_photos
from synthssl.train.data.pipeline import TrainingData
from synthssl.train.data.sampler import ResumableSampler
from synthssl.train.data.scenes import SceneDataset


def test_sampler_shards_ranks_and_resumes():
    a = list(itertools.islice(ResumableSampler(10, seed=3, rank=0, world=2), 12))
    b = list(itertools.islice(ResumableSampler(10, seed=3, rank=1, world=2), 12))
    first_epoch_a = {i for i, _ in a[:5]}
    first_epoch_b = {i for i, _ in b[:5]}
    assert not first_epoch_a & first_epoch_b and len(first_epoch_a | first_epoch_b) == 10
    assert [p for _, p in a] == list(range(12))
    resumed = list(itertools.islice(ResumableSampler(10, seed=3, rank=0, world=2, start=7), 5))
    assert resumed == a[7:12]
    assert [i for i, _ in a[:5]] != [i for i, _ in a[5:10]]  # a new permutation each epoch


def test_scene_dataset_reads_stored_dtypes_and_splits_by_scene(shard_dir):
    data = SceneDataset([shard_dir])
    item = data[0]
    assert item["rgb"].dtype == np.uint8 and item["rgb"].shape == (2, 48, 48, 3)
    assert item["normal"].dtype == np.float16 and item["depth"].dtype == np.float32
    assert item["instance"].dtype == np.int16 and item["contour"].dtype == np.uint8
    train = SceneDataset([shard_dir], split="train", val_fraction=0.3)
    val = SceneDataset([shard_dir], split="val", val_fraction=0.3)
    ids_t = {int(train[i]["scene_id"]) for i in range(len(train))}
    ids_v = {int(val[i]["scene_id"]) for i in range(len(val))}
    assert ids_t and ids_v and not ids_t & ids_v and len(ids_t | ids_v) == 24


def test_photo_folder_recurses_skips_and_counts_corrupt_files(photo_dir, tmp_path):
    files = list_photos(photo_dir)
    assert len(files) == 9 and any(f.name == "broken.jpg" for f in files)
    photos = PhotoFolder(photo_dir, base_size=40, seed=0)
    broken = next(i for i, f in enumerate(photos.files) if f.name == "broken.jpg")
    item = photos[(broken, 5)]
    assert item["skipped"] == 1 and item["photo_index"] == (broken + 1) % len(files)
    assert item["rgb"].shape == (40, 40, 3) and item["rgb"].dtype == np.uint8
    assert photos[(0, 3)]["skipped"] == 0 or photos.files[0].name == "broken.jpg"
    np.testing.assert_array_equal(photos[(2, 9)]["rgb"], photos[(2, 9)]["rgb"])  # position-seeded
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="no .jpg"):
        list_photos(tmp_path / "none")


def test_pipeline_batches_are_deterministic_per_step(shard_dir, photo_dir, tmp_path):
    cfg = load_config(None, tiny_overrides(shard_dir, photo_dir, tmp_path))
    one = TrainingData(cfg, needs_real=True)
    batches = [one.next_batch(s)[0] for s in range(3)]
    again = TrainingData(cfg, needs_real=True, start_step=2).next_batch(2)[0]
    torch.testing.assert_close(again.rgb, batches[2].rgb)
    torch.testing.assert_close(again.real, batches[2].real)
    torch.testing.assert_close(again.intrinsics, batches[2].intrinsics)
    b = batches[0]
    assert b.rgb.shape == (4, 2, 3, 32, 32) and b.real.shape == (4, 3, 32, 32)
    assert b.depth.dtype == torch.float32 and b.instance.dtype == torch.long and b.valid.dtype == torch.bool


def test_real_photo_pairs_are_two_crops_of_one_photo_and_resume_exactly(shard_dir, photo_dir, tmp_path):
    """real_views=2: the real batch keeps its size in images, rows 2i and 2i+1 are crops of photo i."""
    plain = {
        "augment.crop_scale": "[1.0, 1.0]",
        "augment.crop_ratio": "[1.0, 1.0]",
        "augment.flip_p": 0.0,
        "augment.jitter_p": 0.0,
        "augment.grayscale_p": 0.0,
        "augment.blur_p": 0.0,
    }
    cfg = load_config(None, tiny_overrides(shard_dir, photo_dir, tmp_path, **{"data.real_batch_size": 6, **plain}))
    real = TrainingData(cfg, needs_real=True, real_views=2).next_batch(0)[0].real
    assert real.shape == (6, 3, 32, 32)
    pairs = real.view(3, 2, 3, 32, 32)
    torch.testing.assert_close(pairs[:, 0], pairs[:, 1])  # no augmentation: the two crops of a photo are equal
    assert all(not torch.equal(pairs[i, 0], pairs[j, 0]) for i in range(3) for j in range(i))  # 3 photos
    cfg = load_config(None, tiny_overrides(shard_dir, photo_dir, tmp_path, **{"data.real_batch_size": 6}))
    one = TrainingData(cfg, needs_real=True, real_views=2)
    batches = [one.next_batch(s)[0].real for s in range(3)]
    assert not torch.equal(batches[0][0], batches[0][1])  # augmented: two different crops
    again = TrainingData(cfg, needs_real=True, real_views=2, start_step=2).next_batch(2)[0].real
    torch.testing.assert_close(again, batches[2])


def test_only_requested_fields_are_read(shard_dir, photo_dir, tmp_path):
    item = SceneDataset([shard_dir], fields=("depth",))[0]
    assert set(item) == {"rgb", "depth", "scene_id"}
    cfg = load_config(None, tiny_overrides(shard_dir, photo_dir, tmp_path))
    batch = TrainingData(cfg, needs_real=False, fields=("depth", "normal", "contour")).next_batch(0)[0]
    assert batch.depth is not None and batch.valid is not None and batch.normal is not None
    assert batch.instance is None and batch.category is None and batch.intrinsics is None
    with pytest.raises(ValueError, match="unknown fields"):
        SceneDataset([shard_dir], fields=("colour",))


def test_scenes_with_more_views_give_a_fresh_stored_pair_per_draw(tmp_path, photo_dir):
    from helpers.analytic_scene import write_shards

    write_shards(tmp_path / "v4", num_scenes=6, shard_size=3, size=32, views=4)
    full = SceneDataset([tmp_path / "v4"])
    paired = SceneDataset([tmp_path / "v4"], pair_seed=7)
    assert full[(0, 5)]["rgb"].shape[0] == 4 and paired[0]["rgb"].shape[0] == 4  # index alone: all views
    pairs = set()
    for position in range(60):
        index = position % len(paired)
        item, stored = paired[(index, position)], full[index]
        pair = paired.view_pair(position)
        assert pair[0] != pair[1] and item["rgb"].shape[0] == 2
        for key in ("rgb", "depth", "normal", "instance", "intrinsics", "cam_to_world"):
            np.testing.assert_array_equal(item[key], stored[key][pair])  # the stored views, in the drawn order
        np.testing.assert_array_equal(paired[(index, position)]["rgb"], item["rgb"])  # same draw, same pair
        pairs.add(tuple(sorted(pair.tolist())))
    assert len(pairs) == 6  # every pair of the 4 views is drawn
    other_seed = SceneDataset([tmp_path / "v4"], pair_seed=8)
    assert [other_seed.view_pair(p).tolist() for p in range(20)] != [paired.view_pair(p).tolist() for p in range(20)]
    write_shards(tmp_path / "v2", num_scenes=3, shard_size=3, size=32)
    two = SceneDataset([tmp_path / "v2"], pair_seed=7)
    assert two.view_pair(9) is None
    np.testing.assert_array_equal(two[(1, 9)]["rgb"], SceneDataset([tmp_path / "v2"])[1]["rgb"])  # 2 views: as stored
    cfg = load_config(None, tiny_overrides(tmp_path / "v4", photo_dir, tmp_path))
    assert TrainingData(cfg, needs_real=False).next_batch(0)[0].rgb.shape[1] == 2
