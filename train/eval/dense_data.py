"""Held-out rendered views with ground truth, loaded for the dense probes.

Scenes come from :class:`synthssl.dataset.reader.ShardCollection` (optionally its
hash-based "val" split). A seeded permutation of the scenes gives ``test_scenes``
probe-test scenes and then ``train_scenes`` probe-train scenes (disjoint); every view
of a scene becomes one image.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Sequence

import numpy as np

from synthssl.core.console import progress as console_progress
from synthssl.dataset.reader import ShardCollection

__all__ = ["DenseViews", "load_dense_views", "dense_shortfall", "DENSE_FIELDS"]

DENSE_FIELDS = ("rgb", "depth", "normal", "contour", "category")


@dataclass(frozen=True)
class DenseViews:
    """Views with dense ground truth (N = scenes x views).

    rgb uint8 [N, H, W, 3]; depth float32 [N, H, W] metres (0 = no surface);
    normal float32 [N, H, W, 3] camera frame (0 = no surface); contour uint8 [N, H, W]
    {0, 1}; category int64 [N, H, W]; scene_ids int64 [N] (each view's scene id within its render, for
    names); scene_index int64 [N] (each view's scene as an index into the shard collection: unique
    across renders, so views are grouped by scene with it).
    """

    rgb: np.ndarray
    depth: np.ndarray
    normal: np.ndarray
    contour: np.ndarray
    category: np.ndarray
    scene_ids: np.ndarray
    scene_index: np.ndarray

    def __len__(self) -> int:
        return int(self.rgb.shape[0])


def _gather(collection: ShardCollection, indices: np.ndarray, desc: str) -> DenseViews:
    parts: dict[str, list[np.ndarray]] = {k: [] for k in DENSE_FIELDS}
    ids, index = [], []
    scene_ids = collection.scene_ids
    for i in console_progress(indices.tolist(), desc, unit="scene"):
        scene = collection[i]
        for k in DENSE_FIELDS:
            parts[k].append(np.asarray(scene[k]))
        ids.append(np.full(parts["rgb"][-1].shape[0], scene_ids[i], dtype=np.int64))
        index.append(np.full(parts["rgb"][-1].shape[0], i, dtype=np.int64))
    return DenseViews(
        rgb=np.concatenate(parts["rgb"]).astype(np.uint8),
        depth=np.concatenate(parts["depth"]).astype(np.float32),
        normal=np.concatenate(parts["normal"]).astype(np.float32),
        contour=np.concatenate(parts["contour"]).astype(np.uint8),
        category=np.concatenate(parts["category"]).astype(np.int64),
        scene_ids=np.concatenate(ids),
        scene_index=np.concatenate(index),
    )


def dense_shortfall(train: DenseViews, test: DenseViews, train_scenes: int, test_scenes: int) -> str | None:
    """A note for the report when the held-out shards held fewer scenes than the probes asked for, else None."""
    got_train, got_test = len(np.unique(train.scene_index)), len(np.unique(test.scene_index))
    if got_train >= train_scenes and got_test >= test_scenes:
        return None
    return (
        f"the held-out shards gave {got_train} probe-train and {got_test} probe-test scenes, fewer than the "
        f"{train_scenes} and {test_scenes} asked for (dense.train_scenes, dense.test_scenes): these dense "
        f"results rest on less data than configured"
    )


def load_dense_views(
    paths: Sequence[str | PathLike],
    *,
    train_scenes: int,
    test_scenes: int,
    seed: int = 0,
    split: str | None = None,
    val_fraction: float = 0.0,
) -> tuple[DenseViews, DenseViews, list[str]]:
    """(probe-train views, probe-test views, category names) from the shards at ``paths``."""
    collection = ShardCollection(list(paths), split=split, val_fraction=val_fraction, fields=DENSE_FIELDS)
    n = len(collection)
    if n < 2:
        raise ValueError(
            f"dense probes need at least 2 scenes in {', '.join(map(str, paths))} (split={split!r}), found {n}"
        )
    if train_scenes < 1 or test_scenes < 1:
        raise ValueError(f"dense.train_scenes and dense.test_scenes must be >= 1, got {train_scenes}, {test_scenes}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(test_scenes, n // 2)
    test_idx = np.sort(order[:n_test])
    train_idx = np.sort(order[n_test : n_test + train_scenes])
    return (
        _gather(collection, train_idx, "probe-train scenes"),
        _gather(collection, test_idx, "probe-test scenes"),
        list(collection.category_names),
    )
