"""Asset meshes parsed once per asset set: a small cache that every render process maps instead of parsing.

An *asset set* is the list of mesh files a config draws objects from
(`synthssl.render.assets.discover_assets`) with ``objects.max_faces``: each file parsed by
`synthssl.render.assets.load_asset_mesh` (unit-normalised; unusable when it does not parse, has
no faces or more than ``max_faces``). Its cache folder ``assets-<key>`` under
`synthssl.render.cache_folder.cache_root` holds

* ``vertices.npy`` float64 [total, 3] and ``faces.npy`` int64 [total, 3]: every usable mesh's
  vertices and faces (indices into its own vertices), one mesh after the other;
* ``index.json``: the files (their paths, in the set's order) and per file its first vertex,
  vertex count, first face and face count (counts 0 for an unusable file).

``key`` hashes the cache format, ``max_faces`` and every file's path, size and modification time
(nothing is read), so a mesh changed, added or removed makes another set. The render's parent
builds it once before its workers start (`synthssl.render.pipeline.ready_worker_inputs`); then
`open_asset_set` maps it, and a scene's first draw of an asset costs no parsing in any process.
`AssetSet.mesh` builds each mesh once per process from the mapped arrays and returns that same
object at every draw, with exactly the vertices and faces `load_asset_mesh` gives.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from .assets import load_asset_mesh
from .cache_folder import cache_root, open_cached, read_cache_folder, stat_key, write_cache_folder

log = logging.getLogger("synthssl.render")

#: The format of a cached asset set; part of its key.
CACHE_VERSION = 1


def asset_set_key(files: tuple[str, ...], max_faces: int) -> str:
    """32 hex: the asset set of ``files`` at ``max_faces`` (see the module docstring)."""
    return stat_key(f"synthssl asset set v{CACHE_VERSION}\0{int(max_faces)}", ((f, Path(f)) for f in files))


@dataclass
class AssetSet:
    """The parsed meshes of one asset set (see the module docstring)."""

    files: tuple[str, ...]
    ranges: np.ndarray
    """int64 [N, 4]: per file its first vertex, vertex count, first face, face count (0, 0 when unusable)."""
    vertices: np.ndarray
    """float64 [total, 3] (mapped from the cache file, or in memory)."""
    faces: np.ndarray
    """int64 [total, 3]."""
    _meshes: dict[int, trimesh.Trimesh | None] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.files)

    def mesh(self, j: int) -> trimesh.Trimesh | None:
        """``files[j]``'s unit-normalised mesh, the same object at every call (callers never modify
        it); None when the file is unusable."""
        if j not in self._meshes:
            v0, nv, f0, nf = (int(x) for x in self.ranges[j])
            self._meshes[j] = (
                trimesh.Trimesh(
                    np.array(self.vertices[v0 : v0 + nv]), np.array(self.faces[f0 : f0 + nf]), process=False
                )
                if nf
                else None
            )
        return self._meshes[j]


def parse_asset_set(files: tuple[str, ...], max_faces: int) -> AssetSet:
    """Parse every file of the set in this process (`load_asset_mesh`), in memory."""
    log.info("parsing %d asset meshes once into the asset cache", len(files))
    meshes = [load_asset_mesh(f, max_faces) for f in files]
    ranges = np.zeros((len(files), 4), np.int64)
    nv = nf = 0
    for j, m in enumerate(meshes):
        if m is not None:
            ranges[j] = nv, len(m.vertices), nf, len(m.faces)
            nv, nf = nv + len(m.vertices), nf + len(m.faces)
    usable = [m for m in meshes if m is not None]
    vertices = np.concatenate([np.asarray(m.vertices, np.float64) for m in usable]) if usable else np.zeros((0, 3))
    faces = np.concatenate([np.asarray(m.faces, np.int64) for m in usable]) if usable else np.zeros((0, 3), np.int64)
    return AssetSet(files, ranges, vertices, faces)


def write_asset_set(assets: AssetSet, max_faces: int, dest: Path) -> None:
    """Write ``assets`` as the cache folder ``dest`` (`cache_folder.write_cache_folder`)."""
    index = {
        "version": CACHE_VERSION,
        "max_faces": int(max_faces),
        "files": list(assets.files),
        "ranges": assets.ranges.tolist(),
    }
    write_cache_folder(dest, index, {"vertices": assets.vertices, "faces": assets.faces})


def read_asset_set(path: Path) -> AssetSet:
    """The cached asset set in the folder ``path``, its arrays mapped read-only."""
    index, arrays = read_cache_folder(path, CACHE_VERSION, ["vertices", "faces"])
    files = tuple(index["files"])
    ranges = np.asarray(index["ranges"], np.int64).reshape(-1, 4)
    vertices, faces = arrays["vertices"], arrays["faces"]
    if len(ranges) != len(files) or int((ranges[:, 0] + ranges[:, 1]).max(initial=0)) > len(vertices):
        raise ValueError(f"{path}: index and arrays disagree")
    if int((ranges[:, 2] + ranges[:, 3]).max(initial=0)) > len(faces):
        raise ValueError(f"{path}: index and arrays disagree")
    return AssetSet(files, ranges, vertices, faces)


@functools.lru_cache(maxsize=4)
def open_asset_set(files: tuple[str, ...], max_faces: int) -> AssetSet:
    """The asset set of ``files`` at ``max_faces``: mapped from its cache, which is built first when
    missing (see the module docstring)."""
    return open_cached(
        cache_root() / f"assets-{asset_set_key(files, max_faces)}",
        read_asset_set,
        lambda: parse_asset_set(files, max_faces),
        lambda assets, dest: write_asset_set(assets, max_faces, dest),
        "asset cache",
        "parses the asset meshes",
    )


__all__ = [
    "CACHE_VERSION",
    "AssetSet",
    "asset_set_key",
    "parse_asset_set",
    "write_asset_set",
    "read_asset_set",
    "open_asset_set",
]
