"""bench/bench_reader.py prints its figures as JSON, builds the index without opening a shard, and
compares with the reader of the commit before the manifest index in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert out["shards"] == 60 and out["scenes"] == 90 and out["shards_opened_for_index"] == 0
    assert 0 < out["index_bytes_per_million_scenes_per_scene_arrays_only"] <= out["index_bytes_per_million_scenes"]
    for key in (
        "index_build_s",
        "random_scenes_per_s",
        "random_scenes_per_s_12_shards",
        "random_scenes_per_s_12_shards_old_reader",
    ):
        assert out[key] > 0, key
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
