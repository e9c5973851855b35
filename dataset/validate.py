"""Check shards and shard directories against the format contract.

``validate_shard`` checks the header (format, version, attributes), every
dataset's presence, dtype and shape; with ``deep=True`` it also reads every scene
(catching truncated or corrupt chunks) and checks value ranges: finite
non-negative depth, unit normals on surface pixels and zero elsewhere, binary
contours, instance ids within capacity, finite intrinsics and rigid camera poses.
``validate_directory`` checks a render folder's manifest against its files (flat or nested in
subfolders: presence, scene counts, each entry's render id and compat record and,
when deep, checksums), that every shard is compatible with every other (same category table,
asset set, image size, views and format version; `synthssl.dataset.compat`) and that no
(render id, scene id) repeats. ``validate_directories`` does the same across several folders
meant to be read together. Every problem raises :class:`ShardFormatError` naming the file and
the field; incompatible shards and repeated scenes raise its subclass `MixedShardsError`
naming two shards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .compat import COMPAT_KEYS, CompatChecker, compat_from_attrs, is_complete_entry, render_id_from_attrs
from .errors import MixedShardsError, ShardFormatError
from .layout import SHARD_GLOB, shard_relpaths
from .manifest import MANIFEST_NAME, read_manifest, sha256_file
from .schema import ALL_FIELDS, FIRST_OBJECT_ID, scene_shape
from .shard import Shard


def validate_shard(path: str | os.PathLike, deep: bool = False) -> dict[str, Any]:
    """Validate one shard file; returns a small summary dict. Raises ShardFormatError."""
    shard = Shard(path)  # header, version and dataset presence
    try:
        return _validate_open_shard(shard, deep)
    finally:
        shard.close()


def _validate_open_shard(shard: Shard, deep: bool) -> dict[str, Any]:
    path = shard.path
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


class _Scenes:
    """(render id, scene id) -> the first shard holding it; `add` refuses a repeat naming both shards."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, int], Path] = {}

    def add(self, path: Path, render_id: str, scene_ids: np.ndarray) -> None:
        for sid in scene_ids.tolist():
            other = self.seen.setdefault((render_id, sid), path)
            if other != path:
                render = f"render {render_id}" if render_id else "a render without render_id"
                raise MixedShardsError(
                    path,
                    "dataset 'scene_id'",
                    f"scene {sid} of {render} also in {other} (the same scenes given twice?)",
                )


def _check_entry(directory: Path, name: str, entry: dict[str, Any], shard: Shard, deep: bool) -> None:
    """The manifest entry of shard ``name`` against the file."""
    where = directory / MANIFEST_NAME
    if not is_complete_entry(entry):
        raise ShardFormatError(
            where,
            f"shards[{name}]",
            "expected an entry with render_id and compat (docs/shard-format.md); "
            "rebuild the manifest with render-scenes index DIR",
        )
    if entry["num_scenes"] != shard.num_scenes:
        raise ShardFormatError(
            where,
            f"shards[{name}].num_scenes",
            f"expected {shard.num_scenes} (from the file), found {entry['num_scenes']}",
        )
    if entry["render_id"] != render_id_from_attrs(shard.attrs):
        raise ShardFormatError(
            where,
            f"shards[{name}].render_id",
            f"expected {render_id_from_attrs(shard.attrs)!r} (from the file), found {entry['render_id']!r}",
        )
    compat = compat_from_attrs(shard.attrs)
    for key in COMPAT_KEYS:
        if entry["compat"][key] != compat[key]:
            raise ShardFormatError(
                where,
                f"shards[{name}].compat.{key}",
                f"expected {compat[key]!r} (from the file), found {entry['compat'][key]!r}",
            )
    if deep and entry.get("sha256") != sha256_file(shard.path):
        raise ShardFormatError(shard.path, "sha256", "checksum differs from the manifest (file changed or corrupt)")


def _validate_folder(directory: Path, deep: bool, checker: CompatChecker, scenes: _Scenes) -> dict[str, Any]:
    if not directory.is_dir():
        raise ShardFormatError(directory, None, "not a directory")
    names = shard_relpaths(directory)
    if not names:
        raise ShardFormatError(directory, None, f"no {SHARD_GLOB} files (in it or its subfolders)")
    manifest = read_manifest(directory)
    if manifest is None:
        raise ShardFormatError(directory / MANIFEST_NAME, None, "missing (render-scenes writes it after each shard)")
    listed = {e["file"]: e for e in manifest.get("shards", [])}
    summaries = []
    num_scenes = 0
    for name in names:
        fp = directory / name
        shard = Shard(fp)
        try:
            summaries.append(_validate_open_shard(shard, deep))
            entry = listed.get(name)
            if entry is None:
                raise ShardFormatError(
                    directory / MANIFEST_NAME, f"shards[{name}]", "shard file not listed in the manifest"
                )
            _check_entry(directory, name, entry, shard, deep)
            checker.add(fp, compat_from_attrs(shard.attrs))
            scenes.add(fp, render_id_from_attrs(shard.attrs), shard.scene_ids)
        finally:
            shard.close()
        num_scenes += summaries[-1]["num_scenes"]
    for name in listed:
        if not (directory / name).exists():
            raise ShardFormatError(directory / name, None, "listed in the manifest but missing")
    return {"directory": str(directory), "num_shards": len(names), "num_scenes": num_scenes, "shards": summaries}


def validate_directory(directory: str | os.PathLike, deep: bool = False) -> dict[str, Any]:
    """Validate every shard of a render folder and its manifest. Returns a summary dict."""
    return _validate_folder(Path(directory), deep, CompatChecker(), _Scenes())


def validate_directories(directories: Sequence[str | os.PathLike], deep: bool = False) -> list[dict[str, Any]]:
    """Validate several render folders meant to be read together: each as `validate_directory`,
    and every shard compatible with every other, no scene twice across them. One summary each."""
    checker, scenes = CompatChecker(), _Scenes()
    return [_validate_folder(Path(d), deep, checker, scenes) for d in directories]
