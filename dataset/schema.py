"""The shard format: one HDF5 file holds N scenes, each seen from V views.

This module is the single source of truth for names, dtypes and shapes; the
writer, the reader and the validator all read it. Conventions (also in
docs/shard-format.md):

* Camera frame: OpenCV (x right, y down, z forward). ``cam_to_world`` maps camera
  coordinates to world coordinates: ``X_world = R @ X_cam + t``.
* Pixel centres sit at integer coordinates: pixel (row v, column u) is centred
  at image point (u, v); the image spans [-0.5, W-0.5] x [-0.5, H-0.5]. A camera
  point X projects to ``(u, v, 1) * z = K @ X``.
* ``depth`` is metric z-depth along the optical axis (metres), 0 where no
  surface was hit. ``normal`` is a unit vector in the camera frame, pointing
  towards the camera side of the surface, 0 where no surface was hit.
* ``instance``: 0 empty background, 1 floor, 2 walls/backdrop, object k -> 3+k,
  the same in every view of a scene. ``category``: 0/1/2 as for instance, object
  categories from 3 upwards, names in the root attribute ``category_names``.
* ``contour`` is 1 where a 4-neighbour carries a different instance id (both
  sides of a boundary, object-vs-background included), else 0.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable

import numpy as np

FORMAT_NAME = "synthssl.views"
FORMAT_VERSION = 1

BACKGROUND_ID = 0
FLOOR_ID = 1
WALL_ID = 2
FIRST_OBJECT_ID = 3
RESERVED_CATEGORY_NAMES = ("background", "floor", "wall")

#: Root attributes every shard carries (name -> expected Python/NumPy kind).
ROOT_ATTRS = (
    "format",
    "format_version",
    "height",
    "width",
    "views",
    "max_objects",
    "seed",
    "package_version",
    "render_config",
    "category_names",
    "first_scene",
    "num_scenes",
)

#: Provenance root attributes of every shard ``render-scenes`` writes (all strings; computed by
#: `synthssl.render.provenance`): ``render_id`` (16 hex; the same for every shard of one render,
#: array jobs included), ``config_hash`` (64 hex, sha256 of the canonical content config),
#: ``asset_names`` (JSON list of the mesh assets in use, ``source/category/file``),
#: ``assets_sha256`` (64 hex, over those names and the files' bytes). A shard written without
#: them (by another writer) reads as render id "". ``package_version`` is in `ROOT_ATTRS`.
PROVENANCE_ATTRS = ("render_id", "config_hash", "asset_names", "assets_sha256")


def categories_sha256(names: list[str]) -> str:
    """Hex sha256 of ``json.dumps(names)``: names one category table (``category_names`` exactly
    as stored in the shard attribute, decoded from its JSON)."""
    return hashlib.sha256(json.dumps(list(names)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FieldSpec:
    """One dataset of a shard.

    ``shape(h, w, v, m)`` gives the per-scene shape (without the leading N).
    ``dtype`` is the stored dtype; ``None`` means variable-length UTF-8 string.
    """

    dtype: np.dtype | None
    shape: Callable[[int, int, int, int], tuple[int, ...]]
    doc: str
    per_view: bool


def _f(dtype, shape, doc, per_view):
    return FieldSpec(np.dtype(dtype) if dtype is not None else None, shape, doc, per_view)


#: Datasets with a views axis: stored as [N, V, ...].
VIEW_FIELDS: dict[str, FieldSpec] = {
    "rgb": _f("uint8", lambda h, w, v, m: (v, h, w, 3), "sRGB colour, uint8", True),
    "depth": _f(
        "float32", lambda h, w, v, m: (v, h, w), "metric z-depth along the optical axis in metres; 0 = no surface", True
    ),
    "normal": _f(
        "float16",
        lambda h, w, v, m: (v, h, w, 3),
        "unit surface normal, camera frame (OpenCV), facing the camera; 0 = no surface",
        True,
    ),
    "instance": _f(
        "uint16",
        lambda h, w, v, m: (v, h, w),
        "0 background, 1 floor, 2 wall, object k -> 3+k (same id in every view)",
        True,
    ),
    "contour": _f("uint8", lambda h, w, v, m: (v, h, w), "1 where a 4-neighbour has another instance id, else 0", True),
    "category": _f(
        "uint16", lambda h, w, v, m: (v, h, w), "per-pixel category id; names in root attr category_names", True
    ),
    "intrinsics": _f(
        "float32", lambda h, w, v, m: (v, 3, 3), "pinhole K, OpenCV, pixel centres at integer coordinates", True
    ),
    "cam_to_world": _f(
        "float32", lambda h, w, v, m: (v, 4, 4), "camera-to-world rigid transform, OpenCV camera frame", True
    ),
}

#: Datasets with one entry per scene: stored as [N, ...].
SCENE_FIELDS: dict[str, FieldSpec] = {
    "scene_id": _f("int64", lambda h, w, v, m: (), "global scene index (scene i of seed s)", False),
    "overlap": _f(
        "float32",
        lambda h, w, v, m: (max(v - 1, 0),),
        "fraction of view-0 surface pixels visible on the same surface in view 1+j",
        False,
    ),
    "object_count": _f("uint16", lambda h, w, v, m: (), "number of objects in the scene", False),
    "object_instance": _f("uint16", lambda h, w, v, m: (m,), "instance id of each object (0 = padding)", False),
    "object_category": _f("uint16", lambda h, w, v, m: (m,), "category id of each object (0 = padding)", False),
    "object_pose": _f("float32", lambda h, w, v, m: (m, 4, 4), "object-to-world rigid pose (zeros = padding)", False),
    "object_scale": _f("float32", lambda h, w, v, m: (m, 3), "per-axis scale of each object (zeros = padding)", False),
    "objects_json": _f(
        None, lambda h, w, v, m: (), "JSON list of the scene's objects (source, category, pose, scale)", False
    ),
}

ALL_FIELDS: dict[str, FieldSpec] = {**VIEW_FIELDS, **SCENE_FIELDS}


def scene_shape(name: str, height: int, width: int, views: int, max_objects: int) -> tuple[int, ...]:
    """Per-scene shape of dataset ``name`` for the given image size, views and object capacity."""
    return ALL_FIELDS[name].shape(height, width, views, max_objects)
