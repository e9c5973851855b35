"""The shard contract: round trips, atomic writes, plain-h5py access, validation errors, splits."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from helpers.analytic_scene import make_scene, write_shards

from synthssl.dataset import ShardCollection, ShardFormatError, ShardWriter
from synthssl.dataset.manifest import read_manifest, update_manifest
from synthssl.dataset.schema import ALL_FIELDS, VIEW_FIELDS
from synthssl.dataset.validate import validate_directory, validate_shard

ATTRS = {
    "seed": 0,
    "first_scene": 0,
    "render_config": {"x": 1},
    "category_names": ["background", "floor", "wall", "sphere"],
}


def test_round_trip_is_exact(tmp_path):
    scenes = [make_scene(i) for i in range(3)]
    with ShardWriter(tmp_path / "shard-00000.h5", height=32, width=32, views=2, max_objects=4, attrs=ATTRS) as w:
        for s in scenes:
            w.append(s)
    coll = ShardCollection([tmp_path])
    assert len(coll) == 3 and coll.category_names[3] == "sphere"
    for i, s in enumerate(scenes):
        got = coll[i]
        for name in ALL_FIELDS:
            if name == "objects_json":
                assert got[name] == s[name]
            else:
                np.testing.assert_array_equal(got[name], np.asarray(s[name]).astype(ALL_FIELDS[name].dtype))


def test_scenes_written_in_groups_round_trip_and_are_copied_at_append(tmp_path, monkeypatch):
    import synthssl.dataset.writer as writer

    monkeypatch.setattr(writer, "BUFFER_SCENES", 3)  # 7 scenes: groups of 3, 3 and 1 (at close)
    scenes = [make_scene(i) for i in range(7)]
    with ShardWriter(tmp_path / "shard-00000.h5", height=32, width=32, views=2, max_objects=4, attrs=ATTRS) as w:
        for k, s in enumerate(scenes):
            w.append(s)
            s["depth"][:] = -1.0  # the caller reuses its arrays: the writer kept a copy
            assert w.count == k + 1
    coll = ShardCollection([tmp_path])
    assert len(coll) == 7
    for i in range(7):
        want = make_scene(i)
        got = coll[i]
        assert got["objects_json"] == want["objects_json"]
        for name in ALL_FIELDS:
            if name != "objects_json":
                np.testing.assert_array_equal(got[name], np.asarray(want[name]).astype(ALL_FIELDS[name].dtype))


def test_plain_h5py_layout_and_per_scene_chunks(analytic_shards):
    with h5py.File(analytic_shards / "shard-00000.h5", "r") as f:
        assert f.attrs["format"] == "synthssl.views" and f.attrs["format_version"] == 1
        assert json.loads(f.attrs["category_names"])[1] == "floor"
        assert f["rgb"].shape == (4, 2, 32, 32, 3) and f["rgb"].dtype == np.uint8
        assert f["depth"].dtype == np.float32 and f["normal"].dtype == np.float16
        for name in VIEW_FIELDS:
            assert f[name].chunks[0] == 1, name  # one scene per chunk
        assert f["rgb"].compression == "lzf"
        assert list(f["scene_id"][:]) == [0, 1, 2, 3]


def test_writer_is_atomic_on_error(tmp_path):
    target = tmp_path / "shard-00000.h5"
    with pytest.raises(RuntimeError):
        with ShardWriter(target, height=32, width=32, views=2, max_objects=4, attrs=ATTRS) as w:
            w.append(make_scene(0))
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_wrong_shape_naming_field(tmp_path):
    scene = make_scene(0)
    scene["depth"] = scene["depth"][:, :16]
    with ShardWriter(tmp_path / "s.h5", height=32, width=32, views=2, max_objects=4, attrs=ATTRS) as w:
        with pytest.raises(ValueError, match="depth"):
            w.append(scene)


def test_validate_accepts_good_directory(analytic_shards):
    summary = validate_directory(analytic_shards, deep=True)
    assert summary["num_scenes"] == 12 and summary["num_shards"] == 3


@pytest.mark.parametrize(
    "breakage, field",
    [
        ("version", "format_version"),
        ("missing", "normal"),
        ("dtype", "depth"),
        ("truncate", None),
        ("values", "normal"),
    ],
)
def test_validate_names_file_and_field(tmp_path, analytic_shards, breakage, field):
    p = tmp_path / "shard-00000.h5"
    shutil.copy(analytic_shards / "shard-00000.h5", p)
    if breakage == "truncate":
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    else:
        with h5py.File(p, "r+") as f:
            if breakage == "version":
                f.attrs["format_version"] = 99
            elif breakage == "missing":
                del f["normal"]
            elif breakage == "dtype":
                d = f["depth"][:].astype(np.float64)
                del f["depth"]
                f["depth"] = d
            elif breakage == "values":
                f["normal"][0, 0] = 0  # surface pixels without a normal
    with pytest.raises(ShardFormatError) as e:
        validate_shard(p, deep=True)
    assert str(p) in str(e.value)
    if field:
        assert field in str(e.value)


def test_manifest_lists_shards_with_checksums_and_is_idempotent(analytic_shards):
    m1 = read_manifest(analytic_shards)
    assert m1["num_scenes"] == 12 and [e["first_scene"] for e in m1["shards"]] == [0, 4, 8]
    assert all(len(e["sha256"]) == 64 for e in m1["shards"])
    assert update_manifest(analytic_shards) == m1


def test_validate_directory_detects_unlisted_and_corrupt(tmp_path):
    write_shards(tmp_path, num_scenes=4, shard_size=2)
    (tmp_path / "manifest.json").write_text(json.dumps({"shards": []}))
    with pytest.raises(ShardFormatError, match="not listed"):
        validate_directory(tmp_path)


def test_split_is_stable_across_shard_layouts(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_shards(a, num_scenes=40, shard_size=40, size=8)
    write_shards(b, num_scenes=40, shard_size=7, size=8)
    va = ShardCollection([a], split="val", val_fraction=0.25).scene_ids
    vb = ShardCollection([b], split="val", val_fraction=0.25).scene_ids
    tr = ShardCollection([b], split="train", val_fraction=0.25).scene_ids
    np.testing.assert_array_equal(va, vb)
    assert 3 <= len(va) <= 18 and len(va) + len(tr) == 40 and not set(va) & set(tr)


def test_duplicate_scene_ids_are_refused(analytic_shards, tmp_path):
    shutil.copytree(analytic_shards, tmp_path / "copy")
    with pytest.raises(ShardFormatError, match="more than one shard"):
        ShardCollection([analytic_shards, tmp_path / "copy"])


def test_shard_survives_pickling_for_workers(analytic_shards):
    import pickle

    coll = ShardCollection([analytic_shards])
    _ = coll[0]
    clone = pickle.loads(pickle.dumps(coll))
    np.testing.assert_array_equal(clone[5]["depth"], coll[5]["depth"])
