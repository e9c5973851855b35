"""Render folders in the provenance format of docs/shard-format.md, for reader tests.

Analytic scenes (exact geometry, `analytic_scene.make_scene`) written through ShardWriter with
the provenance root attributes, a sidecar per shard and a ``manifest.json`` whose entries carry
``render_id`` and ``compat`` (bench/bench_reader.py writes them; the renderer writes the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))

from analytic_scene import make_scene  # noqa: E402
from bench_reader import CATEGORIES, render_id_of, tiny_folder, write_render_folder  # noqa: E402


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
