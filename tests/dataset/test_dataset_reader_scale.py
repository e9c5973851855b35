"""The reader at scale: a manifest index that opens no shard, a bounded LRU of handles, EMFILE
reported as such, nested layouts, refusing mixed folders, and (render id, scene id) identity."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers.analytic_scene import write_shards
from helpers.provenance_shards import provenance_render, render_id_of, tiny_folder

from synthssl.dataset import ShardCollection, ShardFormatError
from synthssl.dataset.errors import MixedShardsError
from synthssl.dataset.layout import find_shards
from synthssl.dataset.reader import default_max_open_shards
from synthssl.dataset.validate import validate_directories, validate_directory

ROOT = Path(__file__).resolve().parents[2]


class _NoOpen:
    """Stands in for h5py.File: any open fails the test."""

    def __init__(self, *args, **kwargs):
        raise AssertionError(f"a shard was opened: {args[0] if args else kwargs}")


def test_index_from_the_manifest_opens_no_shard(tmp_path, monkeypatch):
    d = provenance_render(tmp_path / "r", num_scenes=10, shard_size=3, per_folder=2)
    monkeypatch.setattr("synthssl.dataset.shard.h5py.File", _NoOpen)
    coll = ShardCollection([d], split="train", val_fraction=0.3)
    full = ShardCollection([d])
    assert len(full) == 10 and full.index.opened == 0 and full.index.num_shards == 4
    assert full.category_names == ["background", "floor", "wall", "sphere"] and (full.height, full.views) == (32, 2)
    assert 0 < len(coll) < 10 and coll.open_shards == 0
    monkeypatch.undo()
    assert [int(full[i]["scene_id"]) for i in range(10)] == list(range(10))
    for arr in (full.index.scene_shard, full.index.scene_local, full.index.scene_id):
        assert isinstance(arr, np.ndarray) and arr.dtype.itemsize <= 4  # compact: no Python objects per scene


def test_nested_layout_is_found_and_listed_by_relative_path(tmp_path):
    d = provenance_render(tmp_path / "r", num_scenes=6, shard_size=2, per_folder=2)
    names = [p.relative_to(d).as_posix() for p in find_shards([d])]
    assert names == ["s0001/shard-00002.h5", "shard-00000.h5", "shard-00001.h5"]
    assert [e["file"] for e in json.loads((d / "manifest.json").read_text())["shards"]] == names
    assert validate_directory(d, deep=True)["num_scenes"] == 6


def test_a_replaced_shard_is_read_from_the_file_not_the_stale_entry(tmp_path):
    d = provenance_render(tmp_path / "r", num_scenes=8, shard_size=4)
    shutil.copy(
        provenance_render(tmp_path / "other", num_scenes=2, shard_size=2) / "shard-00000.h5", d / "shard-00001.h5"
    )  # 2 scenes (ids 0-1) where the manifest says 4 (ids 4-7)
    with pytest.raises(MixedShardsError, match="more than one shard"):
        ShardCollection([d])


def test_handles_are_bounded_lru_and_dropped_when_pickled(tmp_path):
    d = provenance_render(tmp_path / "r", num_scenes=10, shard_size=2)
    coll = ShardCollection([d], max_open_shards=2)
    for i in [0, 2, 4, 6, 8, 0, 9, 1]:
        assert int(coll[i]["scene_id"]) == i
        assert coll.open_shards <= 2
    clone = pickle.loads(pickle.dumps(coll))
    assert clone.open_shards == 0 and int(clone[3]["scene_id"]) == 3
    assert len(pickle.dumps(coll)) < 20_000


def test_max_open_shards_default_follows_ulimit(monkeypatch):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    monkeypatch.delenv("SYNTHSSL_MAX_OPEN_SHARDS", raising=False)
    assert 1 <= default_max_open_shards() <= max(1, soft // 8) if soft > 0 else True
    monkeypatch.setenv("SYNTHSSL_MAX_OPEN_SHARDS", "5")
    assert default_max_open_shards() == 5
    monkeypatch.setenv("SYNTHSSL_MAX_OPEN_SHARDS", "many")
    with pytest.raises(ValueError, match="SYNTHSSL_MAX_OPEN_SHARDS"):
        default_max_open_shards()


def _under_ulimit(code: str, limit: int, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python whose ``ulimit -n`` is ``limit``."""
    prelude = f"import resource; resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def thousand_shards(tmp_path_factory) -> Path:
    """1,000 shards of 1-2 tiny scenes (1,500 scenes), nested 250 per subfolder, with a manifest."""
    d, _ = tiny_folder(tmp_path_factory.mktemp("many") / "r", 1000, 8, per_folder=250)
    return d


@pytest.mark.slow
def test_reading_1000_shards_under_ulimit_64(thousand_shards):
    code = f"""
        import numpy as np, torch
        from synthssl.train.data.scenes import SceneDataset
        ds = SceneDataset([{str(thousand_shards)!r}], fields=("rgb",))
        assert len(ds) == 1500 and ds.collection.max_open_shards == 8, ds.collection.max_open_shards
        order = np.random.default_rng(0).permutation(1500)[:96].tolist()
        loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=order, num_workers=2)
        got = torch.cat([b["scene_id"] for b in loader]).tolist()
        assert got == order, (got[:5], order[:5])
        print("ok", ds.collection.open_shards)
    """
    r = _under_ulimit(code, 64)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr[-2000:]


@pytest.mark.slow
def test_running_out_of_handles_is_reported_as_that(thousand_shards):
    code = f"""
        from synthssl.dataset.reader import ShardCollection
        coll = ShardCollection([{str(thousand_shards)!r}], max_open_shards=500)
        for i in range(0, 1500, 3):
            coll[i]
    """
    r = _under_ulimit(code, 40)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode != 0 and "OpenFilesLimitError" in last, r.stderr[-2000:]
    assert "ulimit -n is 40" in last and "max_open_shards=500" in last and "corrupt" not in last


# -- mixed folders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other, key",
    [
        ({"categories": ["background", "floor", "wall", "cube"]}, "categories_sha256"),
        ({"assets_sha256": "b" * 64}, "assets_sha256"),
        ({"size": 16}, "height"),
    ],
)
def test_mixed_folders_are_refused_naming_two_shards(tmp_path, other, key):
    a = provenance_render(tmp_path / "a", num_scenes=4, seed=1)
    b = provenance_render(tmp_path / "b", num_scenes=4, seed=2, **other)
    for run in (lambda: ShardCollection([a, b]), lambda: validate_directories([a, b])):
        with pytest.raises(MixedShardsError) as e:
            run()
        msg = str(e.value)
        assert "\n" not in msg and key in msg and str(a / "shard-00000.h5") in msg and str(b / "shard-00000.h5") in msg


def test_mixed_shards_in_one_folder_are_refused_by_validate_and_the_cli(tmp_path):
    from synthssl.render.cli import main

    a = provenance_render(tmp_path / "a", num_scenes=8, shard_size=4)
    b = provenance_render(
        tmp_path / "b", num_scenes=8, shard_size=4, categories=["background", "floor", "wall", "cube"]
    )
    shutil.copy(b / "shard-00001.h5", a / "shard-00001.h5")  # same scene ids, other category table
    shutil.copy(b / "shard-00001.json", a / "shard-00001.json")
    m = json.loads((a / "manifest.json").read_text())
    m["shards"][1] = json.loads((a / "shard-00001.json").read_text())
    (a / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(MixedShardsError, match="categories_sha256"):
        validate_directory(a)
    with pytest.raises(MixedShardsError, match="categories_sha256"):
        ShardCollection([a])
    assert main(["validate", str(a)]) == 2
    assert main(["validate", str(tmp_path / "a"), str(tmp_path / "b")]) == 2


def test_shards_without_provenance_read_with_rendered_ones(tmp_path):
    plain = tmp_path / "plain"  # written without render_id and assets_sha256 (another writer than render-scenes)
    write_shards(plain, num_scenes=4, shard_size=4, size=32)
    current = provenance_render(tmp_path / "new", num_scenes=4)
    coll = ShardCollection([plain, current])
    assert len(coll) == 8 and sorted(set(coll.render_ids)) == ["", render_id_of(0)]


def test_manifest_entry_that_disagrees_with_its_shard_is_invalid(tmp_path):
    d = provenance_render(tmp_path / "r", num_scenes=4)
    m = json.loads((d / "manifest.json").read_text())
    m["shards"][0]["compat"]["views"] = 3
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ShardFormatError, match=r"compat.views"):
        validate_directory(d)
    del m["shards"][0]["compat"]
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ShardFormatError) as e:
        validate_directory(d)
    assert str(e.value) == (
        f"{d / 'manifest.json'}: shards[shard-00000.h5]: expected an entry with render_id and compat "
        "(docs/shard-format.md); rebuild the manifest with render-scenes index DIR"
    )


# -- scene identity ------------------------------------------------------------------------------


def test_renders_with_different_seeds_read_together_and_repeats_are_refused(tmp_path):
    a = provenance_render(tmp_path / "a", num_scenes=6, seed=1)
    b = provenance_render(tmp_path / "b", num_scenes=6, seed=2)
    coll = ShardCollection([b, a])
    assert len(coll) == 12 and sorted(coll.scene_ids.tolist()) == sorted(list(range(6)) * 2)
    assert len(validate_directories([a, b])) == 2
    assert ShardCollection([a, b]).render_ids == coll.render_ids  # the order folders are given in does not matter
    with pytest.raises(MixedShardsError, match=r"the same scenes given twice") as e:
        ShardCollection([a, b, a])
    assert "\n" not in str(e.value) and str(a) in str(e.value)
    shutil.copytree(a, tmp_path / "a-copy")
    with pytest.raises(MixedShardsError, match="given twice"):
        validate_directories([a, tmp_path / "a-copy"])


def test_the_reader_never_applies_one_shards_categories_to_another(tmp_path):
    d = provenance_render(tmp_path / "r", num_scenes=8, shard_size=4)
    with h5py.File(d / "shard-00001.h5", "r+") as f:  # a shard changed behind the manifest's back
        f.attrs["category_names"] = json.dumps(["background", "floor", "wall", "cube"])
    m = json.loads((d / "manifest.json").read_text())
    m["shards"][1]["bytes"] = (d / "shard-00001.h5").stat().st_size
    (d / "manifest.json").write_text(json.dumps(m))
    coll = ShardCollection([d])  # the entry still looks current: the mismatch shows on opening
    assert int(coll[0]["scene_id"]) == 0
    with pytest.raises(ShardFormatError, match="categories_sha256"):
        coll[5]
