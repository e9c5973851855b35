"""Benchmark the shard reader at cluster scale: index build time, index memory, random access.

Builds (or reuses) a render folder of ``--shards`` tiny shards (``--size`` px, 1-2 scenes each,
nested 1,000 per subfolder) written directly with `synthssl.dataset.writer.ShardWriter`, each
with the provenance attributes, a sidecar record and a ``manifest.json`` entry in the format of
docs/shard-format.md (`shard_folders.tiny_folder`). Prints one JSON object:

- ``index_build_s``: seconds for `ShardCollection` to index the folder (from the manifest: no
  shard is opened; ``shards_opened_for_index`` says so);
- ``index_bytes_per_million_scenes``: bytes of the index arrays per million scenes, at this
  folder's scenes per shard (per-shard arrays included), and ``..._per_scene_arrays_only``
  (what it tends to with large shards);
- ``random_scenes_per_s``: scenes read at random (every field, steady state) through the bounded
  handle cache, which on this folder misses almost every time (``shard_open_ms`` per miss);
- the same random-access figure on a ``--small`` shard folder for this reader and for the reader
  of commit ``--old-ref`` (the design before this one: every shard open, a Python list index),
  loaded from ``git show REF:dataset/reader.py`` in the same run.

    python bench/bench_reader.py [--shards 20000] [--dir DIR] [--reads 2000] [--small 100]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from shard_folders import tiny_folder

from synthssl.dataset.reader import ShardCollection

ROOT = Path(__file__).resolve().parents[1]
#: The last commit whose dataset/reader.py is the design before the manifest index (issue 10).
OLD_REF = "2b1df8d"


def old_reader_module(ref: str):
    """``dataset/reader.py`` as of commit ``ref``, loaded as a module of the synthssl.dataset package."""
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:dataset/reader.py"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(
            f"bench_reader: --old-ref {ref}: cannot read dataset/reader.py from git ({e}); "
            f"run inside a git clone that has that commit"
        ) from None
    with tempfile.TemporaryDirectory(prefix="old-reader-") as folder:
        path = Path(folder) / "reader_old.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("synthssl.dataset._reader_old", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def random_access(collection, reads: int, seed: int = 0) -> float:
    """Scenes per second reading ``reads`` scenes at random, every field, in steady state: the same
    reads are made once untimed first, so a reader that opens shards lazily is not charged for
    first opens the old reader made in its constructor (shards beyond the handle cache still
    re-open on every miss)."""
    order = np.random.default_rng(seed).integers(0, len(collection), reads).tolist()
    for i in order:
        collection[i]
    t0 = time.perf_counter()
    for i in order:
        collection[i]
    return reads / (time.perf_counter() - t0)


def shard_open_ms(collection, shards: int = 200) -> float:
    """Milliseconds to open a shard and check it against the index (the cost of a handle-cache miss)."""
    handles = collection._handles
    picks = np.linspace(0, collection.index.num_shards - 1, min(shards, collection.index.num_shards)).astype(int)
    handles.close()
    t0 = time.perf_counter()
    for k in picks.tolist():
        handles.get(k)
    seconds = time.perf_counter() - t0
    handles.close()
    return 1000 * seconds / len(picks)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shards", type=int, default=20000, help="shards in the large folder (1-2 scenes each)")
    p.add_argument("--small", type=int, default=100, help="shards in the folder the old reader is compared on")
    p.add_argument("--size", type=int, default=8, help="image size in pixels")
    p.add_argument("--reads", type=int, default=2000, help="random scene reads per measurement")
    p.add_argument(
        "--dir",
        help="folder to build the shard folders in (reused when already built); default: a temp dir, removed after",
    )
    p.add_argument("--old-ref", default=OLD_REF, help="git commit of the reader to compare with")
    args = p.parse_args(argv)
    if args.shards < 1 or args.small < 1 or args.reads < 1:
        p.error("--shards, --small and --reads must be >= 1")
    if args.dir:
        result = measure(Path(args.dir), args)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-reader-") as folder:
            result = measure(Path(folder), args)
    print(json.dumps(result))
    return 0


def measure(base: Path, args: argparse.Namespace) -> dict:
    """Build (or reuse) the two folders under ``base`` and measure them: the figures of `main`."""
    t0 = time.perf_counter()
    big, big_scenes = tiny_folder(base / f"tiny-{args.shards}", args.shards, args.size)
    small, _ = tiny_folder(
        base / f"flat-{args.small}", args.small, args.size, per_folder=None
    )  # the old reader reads flat folders only
    build_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    coll = ShardCollection([big])
    index_s = time.perf_counter() - t0
    index = coll.index
    per_scene = sum(a.nbytes for a in (index.scene_shard, index.scene_local, index.scene_id)) / len(index)
    result = {
        "shards": index.num_shards,
        "scenes": len(index),
        "size": args.size,
        "folders_built_s": round(build_s, 1),
        "index_build_s": round(index_s, 3),
        "shards_opened_for_index": index.opened,
        "index_bytes_per_million_scenes": int(index.nbytes / len(index) * 1e6),
        "index_bytes_per_million_scenes_per_scene_arrays_only": int(per_scene * 1e6),
        "max_open_shards": coll.max_open_shards,
        "random_scenes_per_s": round(random_access(coll, args.reads), 1),
        "shard_open_ms": round(shard_open_ms(coll), 2),
    }
    coll.close()
    print(f"bench_reader: {json.dumps(result)}", file=sys.stderr)  # the large folder's figures, while the rest runs
    new_small = ShardCollection([small])
    old = old_reader_module(args.old_ref).ShardCollection([small])
    result[f"random_scenes_per_s_{args.small}_shards"] = round(random_access(new_small, args.reads), 1)
    result[f"random_scenes_per_s_{args.small}_shards_old_reader"] = round(random_access(old, args.reads), 1)
    new_small.close()
    result["old_ref"] = args.old_ref
    return result


if __name__ == "__main__":
    sys.exit(main())
