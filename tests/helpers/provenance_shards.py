"""Render folders in the provenance format of docs/shard-format.md, for reader tests.

Analytic scenes (exact geometry, `helpers.analytic_scene.make_scene`) written through ShardWriter
with the provenance root attributes, a sidecar per shard and a ``manifest.json`` whose entries
carry ``render_id`` and ``compat`` (bench/shard_folders.py writes them, for the reader benchmark
too; the renderer writes the same).
"""

from __future__ import annotations

from pathlib import Path

from shard_folders import CATEGORIES, render_id_of, tiny_folder, write_render_folder

from helpers.analytic_scene import make_scene


def provenance_render(
    out: Path,
    *,
    num_scenes: int = 8,
    shard_size: int = 4,
    size: int = 32,
    seed: int = 0,
    render_id: str | None = None,
    categories: list[str] | None = None,
    assets_sha256: str = "a" * 64,
    per_folder: int | None = None,
) -> Path:
    """A render folder of analytic scenes with provenance attributes, sidecars and manifest."""
    categories = categories or ["background", "floor", "wall", "sphere"]
    return write_render_folder(
        out,
        num_scenes=num_scenes,
        shard_size=shard_size,
        size=size,
        seed=seed,
        scene_fn=lambda sid: make_scene(sid, size, 2, 4, seed),
        render_id=render_id,
        categories=categories,
        assets_sha256=assets_sha256,
        per_folder=per_folder,
    )


__all__ = ["provenance_render", "tiny_folder", "render_id_of", "CATEGORIES"]
