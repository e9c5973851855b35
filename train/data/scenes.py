"""Torch Dataset over rendered shards (`synthssl.dataset.reader.ShardCollection`).

Each item is one scene with all its views, as NumPy arrays in (nearly) stored dtypes
-- the DataLoader workers only read HDF5 chunks and collate; every float conversion
and augmentation happens batched on the training device
(`synthssl.train.data.augment`). Each worker opens its own HDF5 handles lazily (the
collection keeps a bounded set of handles per process, none inherited across a fork), opening only
the shards of the scenes its sampler hands it, and reads one scene's chunks per item. The index
is NumPy arrays, which forked workers share instead of copying.

Item (keys -> arrays; V views, H x W shard resolution; only the requested ``fields``
besides ``rgb`` and ``scene_id``):
``rgb`` uint8 [V,H,W,3]; ``depth`` float32 [V,H,W] metres; ``normal`` float16
[V,H,W,3]; ``contour`` uint8 [V,H,W]; ``instance`` / ``category`` int16 [V,H,W]
(uint16 ids cast, ids < 32768); ``intrinsics`` float32 [V,3,3];
``cam_to_world`` float32 [V,4,4]; ``scene_id`` int64.

Training pairs from scenes with more than two views: with ``pair_seed`` set and V > 2,
an item asked for as ``(index, position)`` (the `ResumableSampler`'s keys) holds two
distinct views, drawn from ``(pair_seed, position)`` -- a fresh pair each time the scene
is drawn, the same pair in a resumed run, whatever the number of workers. Every
per-view field is cut to those two views (V = 2), in the drawn order. Scenes with two
views, and items asked for by index alone, keep all their views.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from synthssl.dataset.reader import ShardCollection

SCENE_FIELDS_READ = ("rgb", "depth", "normal", "contour", "instance", "category", "intrinsics", "cam_to_world")
_AS_INT16 = ("instance", "category")


def scene_fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    """The shard fields read for items asking for ``fields`` (None = all).

    ``rgb`` is always read; the fields come in `SCENE_FIELDS_READ` order."""
    if fields is not None:
        unknown = sorted(set(fields) - set(SCENE_FIELDS_READ))
        if unknown:
            raise ValueError(f"SceneDataset: unknown fields {unknown}; known: {list(SCENE_FIELDS_READ)}")
    return tuple(f for f in SCENE_FIELDS_READ if fields is None or f == "rgb" or f in fields)


def view_pair(pair_seed: int | None, views: int, position: int) -> np.ndarray | None:
    """int [2]: the two distinct views of the draw at ``position`` of scenes with ``views`` views, drawn
    from ``(pair_seed, position)``; None (keep all views) without a seed or with two views or fewer.
    The scene stream (`synthssl.train.data.stream`) draws its pairs with it too."""
    if pair_seed is None or views <= 2:
        return None
    return np.random.default_rng([pair_seed, position, 0x7135]).choice(views, 2, replace=False)


class SceneDataset(Dataset):
    """Scenes of many shard directories; ``split`` None/"train"/"val" by scene-id hash.

    collection: an already opened `ShardCollection` (of these paths, split and fields) to read
    through instead of opening the shards again (the trainer opens them once).
    pair_seed: draw a pair of views per ``(index, position)`` key when the scenes have more
    than two views (see the module docstring); None keeps all views.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        split: str | None = None,
        val_fraction: float = 0.0,
        fields: Sequence[str] | None = None,
        collection: ShardCollection | None = None,
        pair_seed: int | None = None,
    ):
        self.fields = scene_fields(fields)
        self.pair_seed = pair_seed
        self.collection = (
            collection
            if collection is not None
            else ShardCollection(list(paths), split=split, val_fraction=val_fraction, fields=self.fields)
        )
        if len(self.collection) == 0:
            raise ValueError(
                f"data.shards: split {split!r} of {list(map(str, paths))} holds no scenes (val_fraction={val_fraction})"
            )

    @property
    def scene_ids(self) -> np.ndarray:
        """int64 [len]: each item's scene id within its render (the pair (render id, scene id) is unique)."""
        return self.collection.scene_ids

    @property
    def height(self) -> int:
        return self.collection.height

    @property
    def width(self) -> int:
        return self.collection.width

    @property
    def views(self) -> int:
        return self.collection.views

    @property
    def category_names(self) -> list[str]:
        return self.collection.category_names

    def __len__(self) -> int:
        return len(self.collection)

    def view_pair(self, position: int) -> np.ndarray | None:
        """int [2]: the two distinct views of the draw at sampler ``position``, or None (all views)."""
        return view_pair(self.pair_seed, self.views, position)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, pair = (key[0], self.view_pair(key[1])) if isinstance(key, tuple) else (key, None)
        scene = self.collection[index]
        item = {k: (scene[k].astype(np.int16) if k in _AS_INT16 else scene[k]) for k in self.fields}
        if pair is not None:
            item = {k: v[pair] for k, v in item.items()}  # every field read has the views axis first
        item["scene_id"] = np.int64(self.collection.scene_id(index))
        return item
