"""Benchmark `render-scenes`: scene pairs per second at 128x128 with every map written.

Prints one JSON object: per-process throughput with physics on and off, all-cores
throughput (one worker per CPU core) with physics on, each as wall-clock pairs/s and
as pairs per CPU-second (CPU time of every thread and worker; on a shared machine
this is the per-core figure that does not depend on other jobs' load), the load
average before/after, and the per-stage breakdown
(seconds per scene: build = shapes/materials/lights, physics, gl_build = pyrender
scene, geometry_passes = id passes incl. view re-sampling and first GPU upload,
color_passes, maps = normals/contours/categories, write = HDF5 append + manifest).

    python bench/bench_render.py [--scenes 60] [--size 128] [--backend auto] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time

from synthssl.render.config import config_from_dict
from synthssl.render.pipeline import render_dataset


def run(out: str, scenes: int, size: int, backend: str, physics: bool, workers: int, seed: int) -> dict:
    cfg = config_from_dict({"out": out, "scenes": scenes, "size": size, "views": 2, "seed": seed, "workers": workers,
                            "shard_size": max(scenes // max(workers, 1) // 2, 1), "backend": backend,
                            "physics": {"enabled": physics}})
    t, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    s = render_dataset(cfg, progress=False)
    wall = time.perf_counter() - t
    cpu = time.process_time() - c0 + _children_cpu() - k0  # all threads (llvmpipe's too) and reaped workers
    d = s.to_dict()
    return {"physics": physics, "workers": workers, "scenes": scenes, "seconds": round(wall, 3),
            "pairs_per_second": round(scenes / wall, 2), "cpu_seconds": round(cpu, 3),
            "pairs_per_cpu_second": round(scenes / cpu, 2), "mean_overlap": d["mean_overlap"],
            "stage_seconds_per_scene": d["stage_seconds_per_scene"]}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _load_average() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=60)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--backend", default="auto")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    results = {}
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as tmp:
        run(os.path.join(tmp, "warmup"), 3, args.size, args.backend, True, 1, 999)  # GL context, shader compile
        results["per_process_physics_on"] = run(os.path.join(tmp, "a"), args.scenes, args.size, args.backend, True, 1, 0)
        results["per_process_physics_off"] = run(os.path.join(tmp, "b"), args.scenes, args.size, args.backend, False, 1, 0)
        results["all_cores_physics_on"] = run(os.path.join(tmp, "c"), args.scenes * 2, args.size, args.backend, True,
                                              args.workers, 0)
    print(json.dumps({
        "benchmark": "render-scenes", "size": args.size, "views": 2,
        "backend": os.environ.get("PYOPENGL_PLATFORM", args.backend), "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average_before": load_before, "load_average_after": _load_average(),
        "pairs_per_second_per_process_physics_on": results["per_process_physics_on"]["pairs_per_second"],
        "pairs_per_cpu_second_physics_on": results["per_process_physics_on"]["pairs_per_cpu_second"],
        "target_pairs_per_second_per_core": 10.0,
        **results,
    }, indent=1))


if __name__ == "__main__":
    main()
