"""Benchmark `render-scenes`: pairs/s with 1 and N workers in one run, scaling efficiency, writer cost.

Renders at 128x128 with every map written and physics on. Both arms run through spawned
worker processes (one worker, then N), each with the same number of scenes per worker and
four shards per worker, so they pay the same start-up per worker and differ only in
parallelism. Prints one JSON object:

* ``pairs_per_second_1_worker``, ``pairs_per_second_n_workers`` and ``scaling_efficiency`` =
  pairs/s(N) / (N x pairs/s(1)) (target >= 0.85 with 2 workers on a 2-core machine), in the
  steady state: scenes of the shards finished after each worker's first one, over the time
  between the N-th and the last shard (a worker's start-up -- spawn, imports, GL context, a
  few seconds -- is left out); ``*_wall`` the same over the whole run, start-up included;
  ``pairs_per_cpu_second`` for each arm (CPU time of every thread and worker, start-up
  included: the per-core figure on a shared machine);
* ``write_ms_per_scene``: the writer's cost per scene (append = compression, file write,
  SHA-256, sidecar), measured inside the workers, and ``write_share_of_worker_time``: each
  worker writes its own shards, so the writer costs that fraction of every worker's time and
  scales with the workers (``writer_limit_pairs_per_second_per_worker`` = 1000 / write ms);
  it is never a serial bottleneck;
* the per-stage seconds per scene of each arm, the load average before and after.

    python bench/bench_render.py [--scenes-per-worker 24] [--workers N] [--quick] [--size 128]

``--quick``: 8 scenes per worker (about a minute on 2 cores), for a smoke run.
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

#: Stages that are wall seconds per scene (the others count steps or tries).
TIME_STAGES = ("build", "physics", "gl_build", "geometry_passes", "color_passes", "maps", "write")
SHARDS_PER_WORKER = 4


def steady_rate(shards_done: list[tuple[float, int]], workers: int) -> float | None:
    """Scenes per second once every worker has started: the scenes of the shards finished after the
    first ``workers`` ones, over the time from the ``workers``-th to the last finish. ``shards_done``:
    (seconds since the start, scenes) per shard. None with too few shards."""
    done = sorted(shards_done)
    if len(done) <= workers or done[-1][0] <= done[workers - 1][0]:
        return None
    return sum(k for _, k in done[workers:]) / (done[-1][0] - done[workers - 1][0])


def run(out: str, scenes: int, size: int, backend: str, workers: int, compression: str, seed: int = 0) -> dict:
    """Render ``scenes`` with ``workers`` spawned workers; wall and CPU rates and per-stage costs."""
    cfg = config_from_dict(
        {
            "out": out,
            "scenes": scenes,
            "size": size,
            "views": 2,
            "seed": seed,
            "workers": workers,
            "shard_size": max(scenes // (SHARDS_PER_WORKER * workers), 1),
            "backend": backend,
            "compression": compression,
            "physics": {"enabled": True},
        }
    )
    t, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    s = render_dataset(cfg, progress=False, in_process=False)
    wall = time.perf_counter() - t
    cpu = time.process_time() - c0 + _children_cpu() - k0  # all threads (llvmpipe's too) and reaped workers
    stages = s.to_dict()["stage_seconds_per_scene"]
    steady = steady_rate(s.shards_done, workers)
    worker_s = sum(stages.get(k, 0.0) for k in TIME_STAGES)
    return {
        "workers": workers,
        "scenes": scenes,
        "shard_size": cfg.shard_size,
        "seconds": round(wall, 3),
        "pairs_per_second": round(steady, 3) if steady is not None else None,
        "pairs_per_second_wall": round(scenes / wall, 3),
        "cpu_seconds": round(cpu, 3),
        "pairs_per_cpu_second": round(scenes / cpu, 3),
        "mean_overlap": s.to_dict()["mean_overlap"],
        "write_ms_per_scene": round(1000 * stages.get("write", 0.0), 2),
        "write_share_of_worker_time": round(stages.get("write", 0.0) / worker_s, 3) if worker_s else None,
        "stage_seconds_per_scene": stages,
    }


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
    p.add_argument("--scenes-per-worker", type=int, default=24)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N (default: one per CPU core)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--backend", default="auto")
    p.add_argument("--compression", default="gzip", help="shard compression (default gzip = deflate + shuffle)")
    p.add_argument("--quick", action="store_true", help="8 scenes per worker")
    args = p.parse_args()
    per_worker = 8 if args.quick else args.scenes_per_worker
    n = max(args.workers, 1)
    per_worker = max(per_worker, SHARDS_PER_WORKER)
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as tmp:
        one = run(os.path.join(tmp, "one"), per_worker, args.size, args.backend, 1, args.compression)
        many = run(os.path.join(tmp, "many"), per_worker * n, args.size, args.backend, n, args.compression)
    efficiency = many["pairs_per_second"] / (n * one["pairs_per_second"])
    efficiency_wall = many["pairs_per_second_wall"] / (n * one["pairs_per_second_wall"])
    write_ms = many["write_ms_per_scene"]
    print(
        json.dumps(
            {
                "benchmark": "render-scenes",
                "size": args.size,
                "views": 2,
                "physics": True,
                "compression": args.compression,
                "backend": os.environ.get("PYOPENGL_PLATFORM", args.backend),
                "cpu_count": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "quick": args.quick,
                "load_average_before": load_before,
                "load_average_after": _load_average(),
                "workers": n,
                "pairs_per_second_1_worker": one["pairs_per_second"],
                "pairs_per_second_n_workers": many["pairs_per_second"],
                "scaling_efficiency": round(efficiency, 3),
                "target_scaling_efficiency": 0.85,
                "pairs_per_second_1_worker_wall": one["pairs_per_second_wall"],
                "pairs_per_second_n_workers_wall": many["pairs_per_second_wall"],
                "scaling_efficiency_wall": round(efficiency_wall, 3),
                "pairs_per_cpu_second_1_worker": one["pairs_per_cpu_second"],
                "pairs_per_cpu_second_n_workers": many["pairs_per_cpu_second"],
                "write_ms_per_scene": write_ms,
                "write_share_of_worker_time": many["write_share_of_worker_time"],
                "writer_limit_pairs_per_second_per_worker": round(1000 / write_ms, 1) if write_ms else None,
                "one_worker": one,
                "n_workers": many,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
