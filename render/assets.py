"""Mesh assets from folders: discovery, asset classes (categories) and parsing (once per asset set:
`synthssl.render.asset_cache`).

Sources, in this order: the shipped ``assets/`` folder (:data:`BUNDLED_ASSETS`), user
folders (``objects.asset_dirs``), and pybullet_data's ``random_urdfs`` meshes when pybullet
is installed. Mesh files: .obj .glb .gltf .ply .stl (searched recursively, sorted, so the
list is identical on every machine holding the same files).

Asset class (the object's category name):
* pybullet's random_urdfs meshes -> ``random_urdf``;
* a file inside a sub-folder of an asset root -> the first sub-folder's name
  (``root/mug/a.obj`` -> ``mug``);
* a file directly in a root -> its stem without trailing digits, '-' and '_'
  (``arch_02.obj`` -> ``arch``).

A loaded mesh is centred on its bounding-box centre with largest extent 1 (like
:mod:`shapes`); meshes with more than ``max_faces`` faces or without faces are skipped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl")
#: The shipped meshes. They sit next to this package in every install: ``<repo>/assets`` beside
#: ``<repo>/render`` in a checkout or editable install, ``synthssl/assets`` beside
#: ``synthssl/render`` in a wheel (the package data of ``synthssl.assets``, pyproject.toml), so a
#: wheel draws from the same files and categories as a checkout.
BUNDLED_ASSETS = Path(__file__).resolve().parent.parent / "assets"


class MissingBundledAssets(FileNotFoundError):
    """``objects.bundled_assets`` is on but this install has no shipped assets/ folder."""


@dataclass(frozen=True)
class AssetEntry:
    """One mesh file and its category name."""

    path: str
    category: str
    source: str
    """'bundled' | 'user' | 'pybullet'."""
    name: str
    """how shard metadata names the mesh: its POSIX path relative to the bundled assets/ folder
    or to pybullet_data (the same on every install), the absolute path for a user folder's."""


def pybullet_mesh_dir() -> Path | None:
    """pybullet_data/random_urdfs when pybullet_data is importable, else None."""
    try:
        import pybullet_data
    except ImportError:
        return None
    d = Path(pybullet_data.getDataPath()) / "random_urdfs"
    return d if d.is_dir() else None


def bundled_asset_files() -> list[Path]:
    """The shipped mesh files, sorted; MissingBundledAssets when the folder is absent or empty (an
    install without its package data would otherwise draw from fewer categories, unnoticed)."""
    files = _mesh_files(BUNDLED_ASSETS) if BUNDLED_ASSETS.is_dir() else []
    if not files:
        raise MissingBundledAssets(
            f"objects.bundled_assets: this synthssl install has no shipped meshes in "
            f"{BUNDLED_ASSETS}; reinstall synthssl (its wheel ships them), or set "
            f"objects.bundled_assets=false"
        )
    return files


def asset_class(root: Path, path: Path) -> str:
    """Category name of ``path`` found under ``root`` (see module docstring)."""
    rel = path.relative_to(root)
    if len(rel.parts) > 1:
        return rel.parts[0]
    stem = re.sub(r"[-_0-9]+$", "", path.stem)
    return stem or path.stem


def _mesh_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file())


def discover_assets(asset_dirs: list[str], bundled: bool = True, pybullet: bool = True) -> list[AssetEntry]:
    """All mesh assets of the configured sources, in a deterministic order."""
    entries: list[AssetEntry] = []
    if bundled:
        entries += [
            AssetEntry(str(p), asset_class(BUNDLED_ASSETS, p), "bundled", p.relative_to(BUNDLED_ASSETS).as_posix())
            for p in bundled_asset_files()
        ]
    for d in asset_dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"objects.asset_dirs: {root} is not a folder")
        files = _mesh_files(root)
        if not files:
            raise FileNotFoundError(f"objects.asset_dirs: {root} holds no {'/'.join(MESH_SUFFIXES)} files")
        entries += [AssetEntry(str(p), asset_class(root, p), "user", str(p)) for p in files]
    if pybullet:
        d = pybullet_mesh_dir()
        if d is not None:
            entries += [
                AssetEntry(str(p), "random_urdf", "pybullet", p.relative_to(d.parent).as_posix())
                for p in sorted(d.glob("*/*.obj"))
            ]
    return entries


log = logging.getLogger("synthssl.render")


def load_asset_mesh(path: str, max_faces: int) -> trimesh.Trimesh | None:
    """The mesh of ``path`` as one Trimesh (scenes concatenated), unit-normalised; None if unusable."""
    try:
        loaded = trimesh.load(path, force="mesh", process=True)
    except Exception as exc:  # a broken user file must not stop a long render
        # trimesh sniffs undecodable bytes with an optional text-encoding detector: an ImportError
        # here means "this file is not text", not a missing dependency of synthssl.
        why = (
            "not a mesh file trimesh can parse (binary junk where text was expected)"
            if isinstance(exc, ImportError)
            else f"cannot be parsed as a mesh ({str(exc).strip().splitlines()[0]})"
        )
        log.warning("skipping asset %s: %s", path, why)
        return None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0 or len(loaded.faces) > max_faces:
        return None
    mesh = trimesh.Trimesh(np.asarray(loaded.vertices, np.float64), np.asarray(loaded.faces), process=True)
    lo, hi = mesh.bounds
    ext = float(np.max(hi - lo))
    if not np.isfinite(ext) or ext <= 0:
        return None
    mesh.apply_translation(-(lo + hi) / 2)
    mesh.apply_scale(1.0 / ext)
    return mesh


__all__ = [
    "AssetEntry",
    "discover_assets",
    "load_asset_mesh",
    "asset_class",
    "pybullet_mesh_dir",
    "bundled_asset_files",
    "MissingBundledAssets",
    "MESH_SUFFIXES",
    "BUNDLED_ASSETS",
]
