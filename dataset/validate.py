"""Check shards and shard directories against the format contract.

``validate_shard`` checks the header (format, version, attributes), every
dataset's presence, dtype and shape; with ``deep=True`` it also reads every scene
(catching truncated or corrupt chunks) and checks value ranges: finite
non-negative depth, unit normals on surface pixels and zero elsewhere, binary
contours, instance ids within capacity, finite intrinsics and rigid camera poses.
``validate_directory`` checks a directory's manifest against its files
(presence, scene counts and, when deep, checksums) and that scene ids are unique.
Every problem raises :class:`ShardFormatError` naming the file and the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ShardFormatError
from .manifest import MANIFEST_NAME, read_manifest, sha256_file
from .reader import SHARD_GLOB, Shard
from .schema import ALL_FIELDS, FIRST_OBJECT_ID, scene_shape


def validate_shard(path: str | os.PathLike, deep: bool = False) -> dict[str, Any]:
    """Validate one shard file; returns a small summary dict. Raises ShardFormatError."""
    shard = Shard(path)  # header, version and dataset presence
    f = shard._open()
    a = shard.attrs
    n = int(a["num_scenes"])
    h, w, v, m = int(a["height"]), int(a["width"]), int(a["views"]), int(a["max_objects"])
    for name, spec in ALL_FIELDS.items():
        ds = f[name]
        want = (n, *scene_shape(name, h, w, v, m))
        if ds.shape != want:
            raise ShardFormatError(path, f"dataset '{name}'", f"expected shape {want}, found {ds.shape}")
        if spec.dtype is not None and ds.dtype != spec.dtype:
            raise ShardFormatError(path, f"dataset '{name}'", f"expected dtype {spec.dtype}, found {ds.dtype}")
        if spec.dtype is None and ds.dtype.kind not in ("O", "S", "U"):
            raise ShardFormatError(path, f"dataset '{name}'", f"expected variable-length strings, found {ds.dtype}")
    if deep:
        for i in range(n):
            _check_scene_values(shard, i, m)
    return {"file": str(path), "num_scenes": n, "height": h, "width": w, "views": v}


def _check_scene_values(shard: Shard, i: int, max_objects: int) -> None:
    s = shard.read_scene(i)
    p = shard.path

    def bad(field: str, what: str) -> ShardFormatError:
        return ShardFormatError(p, f"dataset '{field}' (scene {i})", what)

    depth = s["depth"]
    if not np.all(np.isfinite(depth)) or np.any(depth < 0):
        raise bad("depth", "expected finite values >= 0 (metres; 0 = no surface)")
    surface = depth > 0
    nrm = np.linalg.norm(s["normal"].astype(np.float32), axis=-1)
    if np.any(np.abs(nrm[surface] - 1) > 1e-2):
        raise bad("normal", "expected unit vectors where depth > 0")
    if np.any(nrm[~surface] != 0):
        raise bad("normal", "expected zeros where depth == 0")
    if not np.isin(s["contour"], (0, 1)).all():
        raise bad("contour", "expected only 0 and 1")
    if int(s["instance"].max(initial=0)) >= FIRST_OBJECT_ID + max_objects:
        raise bad("instance", f"expected ids < {FIRST_OBJECT_ID + max_objects} (3 + max_objects)")
    if not np.all(np.isfinite(s["intrinsics"])):
        raise bad("intrinsics", "expected finite values")
    T = s["cam_to_world"].astype(np.float64)
    R = T[:, :3, :3]
    if not np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-4) or not np.allclose(T[:, 3], [0, 0, 0, 1]):
        raise bad("cam_to_world", "expected rigid transforms [R t; 0 0 0 1] with orthonormal R")


def validate_directory(directory: str | os.PathLike, deep: bool = False) -> dict[str, Any]:
    """Validate every shard of a directory and its manifest. Returns a summary dict."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ShardFormatError(directory, None, "not a directory")
    files = sorted(directory.glob(SHARD_GLOB))
    if not files:
        raise ShardFormatError(directory, None, f"no {SHARD_GLOB} files")
    manifest = read_manifest(directory)
    if manifest is None:
        raise ShardFormatError(directory / MANIFEST_NAME, None, "missing (render-scenes writes it after each shard)")
    listed = {e["file"]: e for e in manifest.get("shards", [])}
    summaries = []
    seen: dict[int, Path] = {}
    for fp in files:
        summaries.append(validate_shard(fp, deep=deep))
        entry = listed.get(fp.name)
        if entry is None:
            raise ShardFormatError(directory / MANIFEST_NAME, f"shards[{fp.name}]", "shard file not listed in the manifest")
        if entry["num_scenes"] != summaries[-1]["num_scenes"]:
            raise ShardFormatError(directory / MANIFEST_NAME, f"shards[{fp.name}].num_scenes",
                                   f"expected {summaries[-1]['num_scenes']} (from the file), found {entry['num_scenes']}")
        if deep and entry.get("sha256") != sha256_file(fp):
            raise ShardFormatError(fp, "sha256", "checksum differs from the manifest (file changed or corrupt)")
        for sid in Shard(fp).scene_ids:
            if int(sid) in seen:
                raise ShardFormatError(fp, "dataset 'scene_id'", f"scene {int(sid)} also in {seen[int(sid)]}")
            seen[int(sid)] = fp
    for name in listed:
        if not (directory / name).exists():
            raise ShardFormatError(directory / name, None, "listed in the manifest but missing")
    return {"directory": str(directory), "num_shards": len(files), "num_scenes": len(seen), "shards": summaries}
