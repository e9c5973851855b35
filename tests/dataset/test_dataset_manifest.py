"""Sidecars and the merged manifest: O(1) work per finished shard, recovery after a kill,
nested layouts, checksums never re-blessed; the default compression any HDF5 reader decodes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers.analytic_scene import make_scene, write_shards

from synthssl.dataset import ShardWriter
from synthssl.dataset.layout import SHARDS_PER_FOLDER, shard_relpath, sidecar_path
from synthssl.dataset.manifest import index_folder, read_manifest, read_sidecar, record_finished
from synthssl.dataset.schema import categories_sha256
from synthssl.render import cli

NAMES = ["background", "floor", "wall", "sphere"]
ATTRS = {
    "seed": 0,
    "render_config": {"x": 1},
    "category_names": NAMES,
    "render_id": "0123456789abcdef",
    "config_hash": "c" * 64,
    "asset_names": ["bundled/mug/mug.obj"],
    "assets_sha256": "a" * 64,
}


def _finish_one(directory: Path, k: int, first: int) -> tuple[dict, float]:
    """Write shard k (2 tiny scenes) and its sidecar the way a render worker does; returns (entry, seconds
    spent finishing it: close + sidecar)."""
    w = ShardWriter(
        directory / shard_relpath(k),
        height=8,
        width=8,
        views=2,
        max_objects=4,
        attrs={**ATTRS, "first_scene": first},
        expected_scenes=2,
    )
    for i in range(2):
        w.append(make_scene(first + i, 8, 2, 4))
    t = time.perf_counter()
    path = w.close()
    entry = record_finished(directory, path, w.root_attrs, w.sha256)
    return entry, time.perf_counter() - t


def _fill(directory: Path, n: int) -> None:
    """``n`` finished-looking shards and sidecars (placeholders: finishing another shard must not look at them)."""
    for k in range(n):
        p = directory / shard_relpath(k)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\0" * 64)
        sidecar_path(p).write_text("{}")


def test_finishing_a_shard_costs_the_same_whatever_the_folder_holds(tmp_path, monkeypatch):
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    _fill(big, 3000)

    def no_listing(*args, **kwargs):
        raise AssertionError("finishing a shard listed a folder")

    entries = {}
    for directory, k in ((small, 0), (big, 3000)):
        with monkeypatch.context() as m:
            for owner, name in ((os, "listdir"), (os, "scandir"), (Path, "glob"), (Path, "rglob"), (Path, "iterdir")):
                m.setattr(owner, name, no_listing)
            times = [_finish_one(directory, k + j, 2 * j)[1] for j in range(5)]
        entries[directory] = read_sidecar(directory / shard_relpath(k))
        assert not (directory / "manifest.json").exists()  # nothing shared is rewritten per shard
        times.sort()
        entries[directory, "t"] = times[2]
    assert entries[small]["file"] == "shard-00000.h5" and entries[big]["file"] == "s0003/shard-03000.h5"
    size = {d: len(sidecar_path(d / shard_relpath(k)).read_bytes()) for d, k in ((small, 0), (big, 3000))}
    assert abs(size[small] - size[big]) <= len("s0003/") + 2  # the sidecar is one entry, not a folder listing
    # the median cost may not grow with 3000 shards present (the old manifest update took ~77 ms at 2000)
    assert entries[big, "t"] < 3 * entries[small, "t"] + 0.02, (entries[small, "t"], entries[big, "t"])


def test_a_sidecar_is_exactly_the_manifest_entry_with_provenance(tmp_path):
    entry, _ = _finish_one(tmp_path, 0, 0)
    path = tmp_path / "shard-00000.h5"
    with h5py.File(path, "r") as f:
        assert f.attrs["render_id"] == "0123456789abcdef" and json.loads(f.attrs["asset_names"]) == ATTRS["asset_names"]
    assert entry["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    assert entry["bytes"] == path.stat().st_size and entry["mtime_ns"] == path.stat().st_mtime_ns
    assert entry["render_id"] == "0123456789abcdef" and entry["num_scenes"] == 2 and entry["first_scene"] == 0
    assert entry["compat"] == {
        "format_version": 1,
        "height": 8,
        "width": 8,
        "views": 2,
        "categories_sha256": categories_sha256(NAMES),
        "assets_sha256": "a" * 64,
        "package_version": entry["compat"]["package_version"],
        "config_hash": "c" * 64,
    }
    manifest = index_folder(tmp_path)
    assert manifest["shards"] == [entry]
    assert manifest["category_tables"] == {categories_sha256(NAMES): NAMES}
    assert categories_sha256(NAMES) == __import__("hashlib").sha256(json.dumps(NAMES).encode()).hexdigest()


def test_index_recovers_every_finished_shard_after_a_kill(tmp_path, capsys):
    write_shards(tmp_path, num_scenes=12, shard_size=4, size=16)
    before = read_manifest(tmp_path)
    # killed between a shard's rename and its sidecar, and before the run's final merge
    (tmp_path / "shard-00002.json").unlink()
    (tmp_path / "manifest.json").unlink()
    assert cli.main(["index", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["num_scenes"] == 12
    after = read_manifest(tmp_path)
    assert after["shards"] == before["shards"] and after["num_shards"] == 3
    assert read_sidecar(tmp_path / "shard-00002.h5") == before["shards"][2]  # written back
    assert index_folder(tmp_path) == after  # idempotent


def test_checksums_are_never_reblessed_by_a_merge(tmp_path):
    write_shards(tmp_path, num_scenes=8, shard_size=4, size=16)
    recorded = read_sidecar(tmp_path / "shard-00001.h5")["sha256"]
    with h5py.File(tmp_path / "shard-00001.h5", "r+") as f:
        f["scene_id"][0] = 99
    assert index_folder(tmp_path)["shards"][1]["sha256"] == recorded


def test_nested_layout_keeps_small_runs_flat(tmp_path):
    assert shard_relpath(0) == "shard-00000.h5" and shard_relpath(SHARDS_PER_FOLDER - 1) == "shard-00999.h5"
    assert shard_relpath(SHARDS_PER_FOLDER) == "s0001/shard-01000.h5"
    assert shard_relpath(123456) == "s0123/shard-123456.h5"
    _finish_one(tmp_path, 1, 2)
    _finish_one(tmp_path, 1000, 0)
    (tmp_path / "s0001" / "shard-01001.h5.tmp-host-1").write_bytes(b"half")  # a writer in progress: not a shard
    m = index_folder(tmp_path)
    assert [e["file"] for e in m["shards"]] == ["s0001/shard-01000.h5", "shard-00001.h5"]  # sorted by file
    assert m["num_scenes"] == 4


def test_a_merge_does_not_need_flock(tmp_path, monkeypatch):
    import fcntl

    write_shards(tmp_path, num_scenes=4, shard_size=2, size=16)

    def unsupported(*args):
        raise OSError(37, "No locks available")  # ENOLCK, as on many network filesystems

    monkeypatch.setattr(fcntl, "flock", unsupported)
    assert index_folder(tmp_path)["num_scenes"] == 4


def test_index_mistakes_are_one_line(tmp_path, capsys):
    assert cli.main(["index", str(tmp_path / "nope")]) == 2
    assert cli.main(["index", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"render-scenes index: {tmp_path / 'nope'}: not a directory",
        f"render-scenes index: {tmp_path}: no shard-*.h5 files (in it or its subfolders)",
    ]


def test_default_compression_is_deflate_with_shuffle_and_lzf_stays_available(tmp_path):
    for spec, codec, shuffle in ((None, "gzip", True), ("lzf", "lzf", False), ("gzip:6", "gzip", True)):
        kw = {} if spec is None else {"compression": spec}
        path = tmp_path / f"{spec}" / "shard-00000.h5"
        with ShardWriter(path, height=8, width=8, views=2, max_objects=4, attrs={**ATTRS, "first_scene": 0}, **kw) as w:
            w.append(make_scene(0, 8, 2, 4))
        with h5py.File(path, "r") as f:
            assert f["depth"].compression == codec and bool(f["depth"].shuffle) is shuffle, spec
            assert f["scene_id"].compression is None  # small per-scene arrays stay plain


def _h5dump_value(path: Path, dataset: str, index: tuple[int, ...]) -> float:
    start = ",".join(map(str, index))
    count = ",".join("1" for _ in index)
    out = subprocess.run(
        ["h5dump", "-d", dataset, "-s", start, "-c", count, "-m", "%.9g", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    data = out.split("DATA {", 1)[1]
    return float(re.search(r"\):\s*([-0-9.eE+]+)", data).group(1))


@pytest.mark.skipif(
    shutil.which("h5dump") is None,
    reason="h5dump not installed (Debian package hdf5-tools; scripts/setup.sh installs it)",
)
def test_h5dump_reads_a_default_shard_without_h5py(tmp_path):
    scenes = [make_scene(i, 16, 2, 4) for i in range(2)]
    path = tmp_path / "shard-00000.h5"
    with ShardWriter(path, height=16, width=16, views=2, max_objects=4, attrs={**ATTRS, "first_scene": 0}) as w:
        for s in scenes:
            w.append(s)
    depth = np.asarray(scenes[1]["depth"], np.float32)
    v, y, x = np.argwhere(depth > 0)[len(np.argwhere(depth > 0)) // 2]
    assert _h5dump_value(path, "/depth", (1, v, y, x)) == pytest.approx(float(depth[v, y, x]), rel=1e-6)
    rgb = np.asarray(scenes[1]["rgb"], np.uint8)
    assert _h5dump_value(path, "/rgb", (1, 1, 3, 4, 2)) == int(rgb[1, 3, 4, 2])
    header = subprocess.run(
        ["h5dump", "-p", "-H", "-d", "/depth", str(path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "DEFLATE" in header and "SHUFFLE" in header


def test_a_shard_finished_by_another_job_during_a_merge_is_listed(tmp_path, monkeypatch):
    import synthssl.dataset.manifest as manifest

    _finish_one(tmp_path, 0, 0)
    real = manifest.write_json_atomic
    other_job = []

    def write_then_other_job_finishes(path, obj):
        real(path, obj)
        if Path(path).name == "manifest.json" and not other_job:  # another machine, between listing and end
            other_job.append(_finish_one(tmp_path, 1, 2))

    monkeypatch.setattr(manifest, "write_json_atomic", write_then_other_job_finishes)
    m = index_folder(tmp_path)
    assert [e["file"] for e in m["shards"]] == ["shard-00000.h5", "shard-00001.h5"]
    assert read_manifest(tmp_path) == m and m["num_scenes"] == 4


def test_an_unreadable_shard_without_sidecar_is_left_out_with_a_warning(tmp_path, caplog):
    write_shards(tmp_path, num_scenes=4, shard_size=2, size=16)
    (tmp_path / "shard-00002.h5").write_bytes(b"\x89HDF not really")
    with caplog.at_level("WARNING", logger="synthssl.dataset"):
        m = index_folder(tmp_path)
    assert [e["file"] for e in m["shards"]] == ["shard-00000.h5", "shard-00001.h5"]
    assert "shard-00002.h5: not listed in manifest.json: cannot be read as a shard" in caplog.text
    assert not (tmp_path / "shard-00002.json").exists()
