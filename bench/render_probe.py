"""One render worker under measurement: run by bench/bench_render.py in a subprocess, driven over
stdin/stdout with one JSON object per line.

``python bench/render_probe.py --config JSON [--code DIR] [--prepare]``: ``--code`` is a source tree laid out
like this repository (``render/``, ``dataset/``, ``core/`` when it has one, ``assets/``); the
``synthssl`` package is mapped onto it (``synthssl.X`` = ``DIR/X``, as pyproject.toml's
``package-dir`` does), so the same probe measures this checkout or an older commit extracted by
``git archive``. Without ``--code`` the installed ``synthssl`` is used.

With ``LP_NUM_THREADS=tree`` in its environment the probe rasterizes as the tree's render gives each
of one worker per CPU (`tree_rasterizer_threads`).

``--prepare`` runs what the tree's `render_dataset` readies once per run before its workers start
(``pipeline.ready_worker_inputs``: the photo set, the asset set; nothing for a tree without it), prints
``{"event": "prepared", "seconds": s}`` and exits.

Otherwise the probe builds a shard worker the way the tree's own render workers do, renders and writes
scene 0 as a one-scene shard, then prints ``{"event": "ready", "first_scene_at": UNIX seconds}``
(the parent subtracts the time it spawned the process: the start-up). Then it answers commands:

* ``{"cmd": "shard", "index": k, "first": i, "count": n}``: render scenes i..i+n-1 and write them as
  shard k
  (compression, checksum, sidecar: everything a worker does per shard); the answer holds the
  process CPU seconds (``time.process_time``: every thread of the process, llvmpipe's rasterizer
  threads included), the wall seconds, the tree's own per-stage timings as CPU seconds (its
  ``time.perf_counter`` is replaced by ``time.process_time`` in this process) and the number of
  ``cv2.imread`` calls (photos decoded) during the shard;
* ``{"cmd": "quit"}``.

Two tree layouts are known: the current one (`synthssl.render.shard_worker.ShardWorker`) and that
of release 0.1.0 (commit a247366: ``pipeline._init_worker`` / ``pipeline._write_shard``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Callable

WALL = time.perf_counter  # kept before the stage clocks are switched to CPU time


def map_package(code: Path) -> None:
    """Make ``import synthssl.X`` load ``code/X`` (before anything of synthssl is imported)."""
    pkg = types.ModuleType("synthssl")
    pkg.__path__ = [str(code)]
    sys.modules["synthssl"] = pkg


class ImreadCounter:
    """Counts ``cv2.imread`` calls (the render code calls it through the module attribute)."""

    def __init__(self) -> None:
        import cv2

        self.count = 0
        original = cv2.imread

        def counted(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        cv2.imread = counted


def shard_writer(cfg_dict: dict) -> Callable[[int, int, int], dict]:
    """``write(index, first, count)`` -> per-stage seconds of one shard, for the tree in use."""
    try:
        from synthssl.render.shard_worker import ShardWorker
    except ImportError:
        return _release_0_1_0_writer(cfg_dict)
    from synthssl.dataset.layout import shard_relpath
    from synthssl.render.config import config_from_dict
    from synthssl.render.provenance import provenance_of
    from synthssl.render.resume import ShardPlan

    worker = ShardWorker(cfg_dict, provenance_of(config_from_dict(cfg_dict)))

    def write(index: int, first: int, count: int) -> dict:
        return worker.write(ShardPlan(index, first, count, shard_relpath(index))).stage_seconds

    return write


def _release_0_1_0_writer(cfg_dict: dict) -> Callable[[int, int, int], dict]:
    from synthssl.render import pipeline
    from synthssl.render.config import config_from_dict
    from synthssl.render.provenance import render_provenance

    pipeline._init_worker(cfg_dict, render_provenance(config_from_dict(cfg_dict)))

    def write(index: int, first: int, count: int) -> dict:
        return pipeline._write_shard(pipeline.ShardPlan(index, first, count)).stage_seconds

    return write


def prepare(cfg_dict: dict) -> float:
    """Seconds the tree's ``pipeline.ready_worker_inputs`` takes (0 when the tree has none)."""
    from synthssl.render import pipeline
    from synthssl.render.config import config_from_dict

    ready = getattr(pipeline, "ready_worker_inputs", None)
    if ready is None:
        return 0.0
    t = WALL()
    ready(config_from_dict(cfg_dict))
    return WALL() - t


def tree_rasterizer_threads() -> str:
    """``LP_NUM_THREADS`` the tree's render gives each worker when it runs one worker per CPU (its
    ``rasterizer_threads_env``, in ``render/worker_pool.py`` or, in release 0.1.0, ``render/pipeline.py``)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for module in ("synthssl.render.worker_pool", "synthssl.render.pipeline"):
        try:
            policy = getattr(__import__(module, fromlist=["_"]), "rasterizer_threads_env", None)
        except ImportError:
            continue
        if policy is not None:
            return policy(max(2, cpus)).get("LP_NUM_THREADS", "1")
    return "1"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="the render config as JSON (its 'out' is replaced)")
    p.add_argument("--code", default=None, help="source tree to import synthssl from")
    p.add_argument("--prepare", action="store_true", help="ready the run's shared inputs and exit")
    args = p.parse_args()
    if args.code:
        map_package(Path(args.code).resolve())
    cfg_dict = json.loads(args.config)
    if os.environ.get("LP_NUM_THREADS") == "tree":  # before GL loads: llvmpipe reads it once
        del os.environ["LP_NUM_THREADS"]
        os.environ["LP_NUM_THREADS"] = tree_rasterizer_threads()
    with tempfile.TemporaryDirectory(prefix="render-probe-") as out:
        cfg_dict["out"] = out
        if args.prepare:
            print(json.dumps({"event": "prepared", "seconds": prepare(cfg_dict)}), flush=True)
            return
        imreads = ImreadCounter()
        write = shard_writer(cfg_dict)
        write(0, 0, 1)
        print(json.dumps({"event": "ready", "first_scene_at": time.time(), "cpu": time.process_time()}), flush=True)
        time.perf_counter = time.process_time  # the tree's stage timings become CPU seconds
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                break
            before = imreads.count
            c0, t0 = time.process_time(), WALL()
            stages = write(int(cmd["index"]), int(cmd["first"]), int(cmd["count"]))
            answer = {
                "cpu": time.process_time() - c0,
                "wall": WALL() - t0,
                "scenes": int(cmd["count"]),
                "stage_cpu": stages,
                "imreads": imreads.count - before,
            }
            print(json.dumps(answer), flush=True)
    sys.stdout.flush()
    os._exit(0)  # no GL teardown at exit (some drivers crash in atexit handlers)


if __name__ == "__main__":
    main()
