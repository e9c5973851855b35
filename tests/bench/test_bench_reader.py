"""bench/bench_reader.py prints its figures as JSON, builds the index without opening a shard, and
compares with the reader of the commit before the manifest index in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bench_reader

ROOT = Path(__file__).resolve().parents[2]


def test_bench_reader_prints_the_figures(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/bench_reader.py"),
            "--shards",
            "60",
            "--small",
            "12",
            "--reads",
            "40",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    timings = {
        "folders_built_s",
        "index_build_s",
        "random_scenes_per_s",
        "shard_open_ms",
        "random_scenes_per_s_12_shards",
        "random_scenes_per_s_12_shards_old_reader",
    }
    assert set(out) == timings | {
        "shards",
        "scenes",
        "size",
        "shards_opened_for_index",
        "index_bytes_per_million_scenes",
        "index_bytes_per_million_scenes_per_scene_arrays_only",
        "max_open_shards",
        "old_ref",
    }
    assert out["shards"] == 60 and out["scenes"] == 90 and out["size"] == 8 and out["shards_opened_for_index"] == 0
    assert out["old_ref"] == bench_reader.OLD_REF
    # Per scene: its shard (uint16, < 65,536 shards), its place in the shard (uint16) and its id (int32).
    assert out["index_bytes_per_million_scenes_per_scene_arrays_only"] == (2 + 2 + 4) * 1_000_000
    # Per shard: its root (uint16), relative path (14 bytes: shard-00012.h5; the first 1,000 shards of a
    # render lie flat), render (uint16) and scene count (uint32); 60 shards of 1-2 scenes hold 90 scenes.
    assert out["index_bytes_per_million_scenes"] == int((90 * (2 + 2 + 4) + 60 * (2 + 14 + 2 + 4)) / 90 * 1e6)
    for key in timings:  # measured: positive, finite
        assert 0 <= out[key] < float("inf"), key
    assert out["index_build_s"] > 0 and all(out[k] > 0 for k in timings if k.startswith("random_scenes_per_s"))
    again = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/bench_reader.py"),
            "--shards",
            "60",
            "--small",
            "12",
            "--reads",
            "5",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert again.returncode == 0 and json.loads(again.stdout)["folders_built_s"] < out["folders_built_s"] + 1
