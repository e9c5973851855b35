"""Benchmark shard compression: size, write cost and read cost per scene for each codec.

Renders ``--scenes`` scenes once (128 px, 2 views, every map, physics on), then writes them
into one shard per codec and reads every scene back (all fields, a fresh handle), ``--repeat``
times, keeping the fastest. Prints one JSON object: for each codec, KB per scene, write
ms/scene (append = compression, plus the file write and its SHA-256) and read ms/scene.

    python bench/bench_compression.py [--scenes 16] [--size 128] [--repeat 3] [--codecs gzip:1,gzip:4,lzf]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from synthssl.dataset.reader import Shard
from synthssl.dataset.writer import ShardWriter
from synthssl.render import gl_compat
from synthssl.render.config import config_from_dict
from synthssl.render.physics import PhysicsWorld, physics_available
from synthssl.render.renderer import SceneRenderer
from synthssl.render.scene import SceneSampler
from synthssl.render.scene_maps import render_scene

DEFAULT_CODECS = "gzip:1,gzip:4,gzip:6,lzf,none"


def render_scenes(scenes: int, size: int, backend: str) -> tuple[list[dict], dict]:
    """``scenes`` rendered scenes at ``size`` px and the writer attributes for them."""
    cfg = config_from_dict({"scenes": scenes, "size": size, "views": 2, "backend": backend})
    gl_compat.use_backend(cfg.backend)
    sampler = SceneSampler(cfg, PhysicsWorld() if physics_available() else None)
    renderer = SceneRenderer(cfg.size, cfg.size, cfg.backend, cfg.appearance.antialias_mode)
    out = [render_scene(cfg, sampler, renderer, i)[0] for i in range(scenes)]
    renderer.close()
    attrs = {"seed": 0, "render_config": cfg.to_dict(), "category_names": sampler.category_names, "first_scene": 0}
    return out, {"attrs": attrs, "size": size, "max_objects": cfg.objects.max_objects}


def measure(codec: str, scenes: list[dict], meta: dict, folder: Path) -> dict:
    """One write and one full read of ``scenes`` with ``codec``: seconds and bytes."""
    path = folder / f"shard-{codec.replace(':', '-')}.h5"
    t = time.perf_counter()
    w = ShardWriter(
        path,
        height=meta["size"],
        width=meta["size"],
        views=2,
        max_objects=meta["max_objects"],
        attrs=meta["attrs"],
        compression=codec,
        expected_scenes=len(scenes),
    )
    for s in scenes:
        w.append(s)
    w.close()
    write = time.perf_counter() - t
    t = time.perf_counter()
    shard = Shard(path)
    for i in range(len(shard)):
        shard.read_scene(i)
    shard.close()
    read = time.perf_counter() - t
    nbytes = path.stat().st_size
    path.unlink()
    return {"write": write, "read": read, "bytes": nbytes}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=16)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--backend", default="auto")
    p.add_argument("--codecs", default=DEFAULT_CODECS, help=f"comma-separated (default {DEFAULT_CODECS})")
    args = p.parse_args()
    scenes, meta = render_scenes(args.scenes, args.size, args.backend)
    n = len(scenes)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for codec in args.codecs.split(","):
            runs = [measure(codec, scenes, meta, Path(tmp)) for _ in range(max(args.repeat, 1))]
            results[codec] = {
                "kb_per_scene": round(runs[0]["bytes"] / n / 1024, 1),
                "write_ms_per_scene": round(min(r["write"] for r in runs) / n * 1000, 2),
                "read_ms_per_scene": round(min(r["read"] for r in runs) / n * 1000, 2),
            }
    print(
        json.dumps(
            {
                "benchmark": "shard-compression",
                "size": args.size,
                "views": 2,
                "scenes": n,
                "repeat": args.repeat,
                "load_average": round(os.getloadavg()[0], 2),
                "codecs": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
