"""Render folders in the provenance format of docs/shard-format.md, written without the renderer.

`write_render_folder` writes any scenes, one `ShardWriter` per shard; `tiny_folder` writes
thousands of 1-2 scene shards in seconds by copying two template shards. Both write the
provenance root attributes (``render_id``, ``config_hash``, ``asset_names``, ``assets_sha256``),
a sidecar per shard and ``manifest.json``, as the renderer does. The reader benchmark
(bench_reader.py) builds its folders with them, and so do the reader tests (tests/ imports this
module through pytest's ``pythonpath``; see pyproject.toml).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from synthssl.core.version import package_version
from synthssl.dataset.compat import compat_from_attrs
from synthssl.dataset.layout import shard_relpath, sidecar_path
from synthssl.dataset.manifest import MANIFEST_NAME, sha256_file, write_json_atomic
from synthssl.dataset.schema import ALL_FIELDS, FORMAT_NAME, FORMAT_VERSION, scene_shape
from synthssl.dataset.writer import ShardWriter

CATEGORIES = ["background", "floor", "wall", "cube", "sphere"]


def render_id_of(seed: int) -> str:
    """A 16-hex render id standing for the render with ``seed`` (as the writer derives one)."""
    return hashlib.sha256(f"bench-render/{seed}".encode()).hexdigest()[:16]


def constant_scene(scene_id: int, size: int, views: int, max_objects: int) -> dict[str, Any]:
    """A valid scene of constant maps (floor everywhere, unit normals, 1 m depth) with id ``scene_id``."""
    out: dict[str, Any] = {}
    for name, spec in ALL_FIELDS.items():
        shape = scene_shape(name, size, size, views, max_objects)
        out[name] = "[]" if spec.dtype is None else np.zeros(shape, spec.dtype)
    out["scene_id"] = np.int64(scene_id)
    out["depth"][:] = 1.0
    out["normal"][..., 2] = -1.0
    out["instance"][:] = out["category"][:] = 1
    out["intrinsics"][:] = np.array([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1]], np.float32)
    out["cam_to_world"][:] = np.eye(4, dtype=np.float32)
    return out


def provenance_attrs(
    *, first_scene: int, size: int, seed: int, render_id: str, categories: list[str], assets_sha256: str
) -> dict[str, Any]:
    """The caller attributes of a ShardWriter for a shard with the provenance attributes."""
    config = {"generator": "bench", "size": size, "seed": seed}
    return {
        "seed": seed,
        "first_scene": first_scene,
        "render_config": config,
        "category_names": categories,
        "render_id": render_id,
        "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
        "asset_names": json.dumps(categories[3:]),
        "assets_sha256": assets_sha256,
    }


def _entry(
    out: Path, name: str, attrs: Mapping[str, Any], n: int, size: int, views: int, durable: bool = True
) -> dict[str, Any]:
    """The manifest entry of shard ``name`` (written with ``attrs``), also written as its sidecar
    (atomically and fsynced when ``durable``; else a plain write, for throwaway benchmark data)."""
    written = {
        **attrs,
        "format_version": FORMAT_VERSION,
        "height": size,
        "width": size,
        "views": views,
        "category_names": json.dumps(attrs["category_names"]),
        "package_version": package_version(),
    }
    st = (out / name).stat()
    entry = {
        "file": name,
        "num_scenes": n,
        "first_scene": int(attrs["first_scene"]),
        "bytes": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256_file(out / name),
        "render_id": attrs["render_id"],
        "compat": compat_from_attrs(written),
    }
    if durable:
        write_json_atomic(sidecar_path(out / name), entry)
    else:
        sidecar_path(out / name).write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
    return entry


def _write_manifest(out: Path, entries: list[dict[str, Any]], categories: list[str]) -> None:
    entries = sorted(entries, key=lambda e: e["file"])
    write_json_atomic(
        out / MANIFEST_NAME,
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "num_shards": len(entries),
            "num_scenes": sum(e["num_scenes"] for e in entries),
            "shards": entries,
            "category_tables": {entries[0]["compat"]["categories_sha256"]: categories},
        },
    )


def write_render_folder(
    out: str | os.PathLike,
    *,
    num_scenes: int,
    shard_size: int,
    scene_fn: Callable[[int], Mapping[str, Any]],
    size: int,
    views: int = 2,
    max_objects: int = 4,
    seed: int = 0,
    render_id: str | None = None,
    categories: list[str] | None = None,
    assets_sha256: str = "a" * 64,
    per_folder: int | None = None,
    compression: str = "lzf",
) -> Path:
    """Write a render folder in the provenance format of docs/shard-format.md, one ShardWriter per
    shard: shards with ``render_id``, ``config_hash``, ``asset_names`` and ``assets_sha256``
    attributes, a sidecar per shard and ``manifest.json`` (entries sorted by file,
    ``category_tables``). Shard k sits at ``shard_relpath(k, per_folder)``: nested ``per_folder``
    to a subfolder from shard ``per_folder`` on (default: as the renderer places them)."""
    out = Path(out)
    categories = list(categories or CATEGORIES)
    render_id = render_id if render_id is not None else render_id_of(seed)
    entries = []
    for k, first in enumerate(range(0, num_scenes, shard_size)):
        n = min(shard_size, num_scenes - first)
        name = shard_relpath(k, per_folder)
        attrs = provenance_attrs(
            first_scene=first,
            size=size,
            seed=seed,
            render_id=render_id,
            categories=categories,
            assets_sha256=assets_sha256,
        )
        with ShardWriter(
            out / name,
            height=size,
            width=size,
            views=views,
            max_objects=max_objects,
            attrs=attrs,
            compression=compression,
            expected_scenes=n,
        ) as w:
            for sid in range(first, first + n):
                w.append(scene_fn(sid))
        entries.append(_entry(out, name, attrs, n, size, views))
    _write_manifest(out, entries, categories)
    return out


_SENTINEL_FIRST = 0x7EA6_0000_0000_0000  # first_scene of a template shard
_SENTINEL_SCENE = 0x7EA5_0000_0000_0000  # scene id j of a template shard is this + j


class _Template:
    """A shard of ``n`` constant scenes written once with ShardWriter; copies get their own scene ids
    and first_scene by overwriting the template's sentinel values (int64, little-endian) in the bytes.
    HDF5 keeps no checksum over these (uncompressed scene_id chunk, version-1 attribute message)."""

    def __init__(self, folder: Path, n: int, size: int, attrs: Mapping[str, Any]):
        path = folder / f"template-{n}.h5"
        attrs = {**attrs, "first_scene": _SENTINEL_FIRST}
        with ShardWriter(
            path, height=size, width=size, views=2, max_objects=4, attrs=attrs, compression="none", expected_scenes=n
        ) as w:
            for j in range(n):
                w.append(constant_scene(_SENTINEL_SCENE + j, size, 2, 4))
        self.image = bytearray(path.read_bytes())
        path.unlink()
        self.offsets = [self._offset(_SENTINEL_FIRST)] + [self._offset(_SENTINEL_SCENE + j) for j in range(n)]

    def _offset(self, value: int) -> int:
        pattern = int(value).to_bytes(8, "little")
        at = self.image.find(pattern)
        if at < 0 or self.image.find(pattern, at + 1) >= 0:
            raise RuntimeError(f"bench_reader: template sentinel {value:#x} not found exactly once")
        return at

    def write(self, path: Path, first: int) -> None:
        image = self.image
        image[self.offsets[0] : self.offsets[0] + 8] = int(first).to_bytes(8, "little")
        for j, at in enumerate(self.offsets[1:]):
            image[at : at + 8] = int(first + j).to_bytes(8, "little")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(image)
        os.replace(tmp, path)


def tiny_folder(out: Path, shards: int, size: int, per_folder: int | None = 1000, seed: int = 0) -> tuple[Path, int]:
    """``shards`` shards of 1-2 constant scenes (alternating) with a provenance manifest, reused when
    ``out`` already holds them. Two shards are written with ShardWriter; the rest are their copies
    with other scene ids (see `_Template`), which takes seconds instead of minutes for 20,000."""
    scenes = shards // 2 * 3 + shards % 2
    manifest = out / MANIFEST_NAME
    if manifest.exists() and json.loads(manifest.read_text()).get("num_shards") == shards:
        return out, scenes
    out.mkdir(parents=True, exist_ok=True)
    attrs = provenance_attrs(
        first_scene=0, size=size, seed=seed, render_id=render_id_of(seed), categories=CATEGORIES, assets_sha256="a" * 64
    )
    templates = {n: _Template(out, n, size, attrs) for n in (1, 2)}
    entries, first = [], 0
    for k in range(shards):
        n, name = 1 + k % 2, shard_relpath(k, per_folder)
        templates[n].write(out / name, first)
        entries.append(_entry(out, name, {**attrs, "first_scene": first}, n, size, 2, durable=False))
        first += n
    _write_manifest(out, entries, CATEGORIES)
    return out, scenes
