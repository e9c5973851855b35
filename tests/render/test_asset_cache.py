"""The asset cache: meshes parsed once per asset set, then mapped; the same meshes as parsing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import trimesh
from helpers.call_counter import CallCounter

from synthssl.render import asset_cache
from synthssl.render.asset_cache import AssetSet, asset_set_key, open_asset_set, read_asset_set, write_asset_set
from synthssl.render.assets import load_asset_mesh
from synthssl.render.cache_folder import cache_root
from synthssl.render.config import config_from_dict
from synthssl.render.pipeline import ready_worker_inputs
from synthssl.render.scene import SceneSampler


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """A fresh cache root per test, and no asset set kept from another test in this process."""
    monkeypatch.setenv("SYNTHSSL_CACHE_DIR", str(tmp_path / "cache"))
    open_asset_set.cache_clear()
    yield
    open_asset_set.cache_clear()


def _meshes(folder) -> tuple[str, ...]:
    """Three OBJ files (a box, a cylinder of 64 faces, a cone) and one that does not parse, sorted."""
    folder.mkdir(parents=True, exist_ok=True)
    trimesh.creation.box(extents=(0.3, 0.2, 0.1)).export(folder / "a_box.obj")
    trimesh.creation.cylinder(radius=0.2, height=0.5, sections=16).export(folder / "b_cylinder.obj")
    trimesh.creation.cone(radius=0.3, height=0.4, sections=12).export(folder / "c_cone.obj")
    (folder / "d_junk.obj").write_bytes(bytes(range(256)) * 8)
    return tuple(str(p) for p in sorted(folder.glob("*.obj")))


def test_an_asset_set_is_parsed_once_then_mapped_with_the_parsed_meshes(tmp_path, monkeypatch):
    files = _meshes(tmp_path / "meshes")
    parses = CallCounter(monkeypatch, asset_cache, "load_asset_mesh")
    built = open_asset_set(files, 60)
    assert parses.calls == 4
    assert [f.name for f in cache_root().iterdir()] == [f"assets-{asset_set_key(files, 60)}"]
    open_asset_set.cache_clear()
    mapped = open_asset_set(files, 60)
    assert parses.calls == 4  # the second process maps, it does not parse
    assert isinstance(mapped.vertices, np.memmap) and isinstance(built.faces, np.memmap)
    for j, f in enumerate(files):
        want = load_asset_mesh(f, 60)
        got = mapped.mesh(j)
        if j == 1 or j == 3:  # 64 faces > 60; junk
            assert want is None and got is None
            continue
        assert np.array_equal(got.vertices, want.vertices) and np.array_equal(got.faces, want.faces)
        assert got is mapped.mesh(j)  # one object per process: its hull faces are kept (resting.shared_hull_faces)
    assert (
        mapped.ranges.tolist() == built.ranges.tolist() == [[0, 8, 0, 12], [0, 0, 0, 0], [8, 14, 12, 24], [0, 0, 0, 0]]
    )


def test_the_key_follows_the_files_sizes_and_times_and_max_faces(tmp_path):
    files = _meshes(tmp_path / "meshes")
    key = asset_set_key(files, 60)
    assert key == asset_set_key(files, 60) and key != asset_set_key(files, 64)
    assert asset_set_key(files[:3], 60) != key
    os.utime(files[0], ns=(1_000_000_000, 1_000_000_000))
    assert asset_set_key(files, 60) != key


def test_a_set_another_process_wrote_first_wins(tmp_path):
    files = _meshes(tmp_path / "meshes")
    mine = asset_cache.parse_asset_set(files, 100)
    dest = tmp_path / "cache" / "assets-x"
    theirs = AssetSet(mine.files, mine.ranges, np.zeros_like(mine.vertices), mine.faces)
    write_asset_set(theirs, 100, dest)
    write_asset_set(mine, 100, dest)  # the rename loses: the folder in place is kept
    assert not np.any(read_asset_set(dest).vertices)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["assets-x"]
    assert sorted(p.name for p in dest.iterdir()) == ["faces.npy", "index.json", "vertices.npy"]


def test_an_unwritable_cache_folder_parses_in_memory_and_says_so_once(tmp_path, monkeypatch, caplog):
    files = _meshes(tmp_path / "meshes")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SYNTHSSL_CACHE_DIR", str(blocked))
    with caplog.at_level("WARNING", logger="synthssl.render"):
        found = open_asset_set(files, 100)
        open_asset_set(files, 100)
    assert not isinstance(found.vertices, np.memmap)
    assert np.array_equal(found.mesh(2).vertices, load_asset_mesh(files[2], 100).vertices)
    messages = [m for m in caplog.messages if not m.startswith("skipping asset")]
    assert len(messages) == 1 and messages[0].startswith(f"cannot write the asset cache in {blocked} (")
    assert messages[0].endswith(
        "each render process parses the asset meshes itself (set SYNTHSSL_CACHE_DIR to a writable folder)"
    )


def test_scenes_draw_assets_from_the_set_that_the_render_builds_before_its_workers(tmp_path, monkeypatch):
    folder = tmp_path / "meshes"
    files = _meshes(folder)
    objects = {"asset_dirs": [str(folder)], "bundled_assets": False, "pybullet_assets": False, "max_faces": 100}
    cfg = config_from_dict({"out": str(tmp_path / "out"), "objects": {**objects, "source_weights": {"asset": 1.0}}})
    ready_worker_inputs(cfg)
    assert (cache_root() / f"assets-{asset_set_key(files, 100)}" / "index.json").is_file()
    parses = CallCounter(monkeypatch, asset_cache, "load_asset_mesh")
    open_asset_set.cache_clear()
    scene = SceneSampler(cfg).sample(0, 0)
    assert parses.calls == 0
    by_name = {os.path.basename(f): load_asset_mesh(f, 100) for f in files}
    for ob in scene.objects:
        base = by_name[ob.source.rsplit("/", 1)[-1]]
        assert np.array_equal(ob.mesh.vertices, base.vertices * ob.scale)
    without = config_from_dict(
        {"out": str(tmp_path / "out2"), "objects": {**objects, "source_weights": {"primitive": 1.0, "asset": 0.0}}}
    )
    for kept in cache_root().iterdir():
        kept.rename(tmp_path / kept.name)
    ready_worker_inputs(without)
    assert not any(cache_root().glob("assets-*"))  # no asset draws: no asset set
