"""Scene content: shapes, assets and their categories, textures, determinism of the description."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from synthssl.dataset.reader import ShardCollection
from synthssl.render import shapes
from synthssl.render.assets import asset_class, discover_assets
from synthssl.render.config import config_from_dict
from synthssl.render.pipeline import render_dataset
from synthssl.render.scene import SceneSampler
from synthssl.render.textures import make_texture


@pytest.mark.parametrize("name", sorted({**shapes.PRIMITIVES, **shapes.PROCEDURAL}))
def test_shapes_are_closed_outward_and_unit_sized(name):
    rng = np.random.default_rng(1)
    make = {**shapes.PRIMITIVES, **shapes.PROCEDURAL}[name]
    for _ in range(3):
        m = make(rng)
        assert m.is_watertight and m.is_winding_consistent and m.volume > 0  # normals point outwards
        assert np.isclose(m.extents.max(), 1.0) and np.allclose(m.bounds.sum(axis=0), 0, atol=1e-9)


def test_scene_description_is_a_function_of_seed_and_index():
    cfg = config_from_dict({"physics": {"enabled": False}})
    a, b = SceneSampler(cfg, None), SceneSampler(cfg, None)
    b.sample(0, 5)  # other scenes drawn first must not matter
    s1, s2 = a.sample(0, 3), b.sample(0, 3)
    assert s1.objects_json(a.category_ids) == s2.objects_json(b.category_ids)
    assert all(np.array_equal(x.mesh.vertices, y.mesh.vertices) for x, y in zip(s1.objects, s2.objects))
    assert s1.objects_json(a.category_ids) != a.sample(1, 3).objects_json(a.category_ids)


@pytest.mark.gl
def test_asset_classes_and_user_folder_objects(tmp_path):
    folder = tmp_path / "my_assets"
    (folder / "mugs").mkdir(parents=True)
    (folder / "mugs" / "a.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    (folder / "rock_01.obj").write_text("v 0 0 0\nv 2 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    assert asset_class(folder, folder / "mugs" / "a.obj") == "mugs"
    assert asset_class(folder, folder / "rock_01.obj") == "rock"
    entries = discover_assets([str(folder)], bundled=True, pybullet=False)
    assert {"mugs", "rock", "arch", "mug"} <= {e.category for e in entries}
    cfg = config_from_dict(
        {
            "out": str(tmp_path / "out"),
            "scenes": 2,
            "size": 32,
            "backend": "auto",
            "physics": {"enabled": False},
            "objects": {"source_weights": {"asset": 1.0}, "asset_dirs": [str(folder)], "pybullet_assets": False},
        }
    )
    render_dataset(cfg, progress=False)
    coll = ShardCollection([str(tmp_path / "out")])
    names = coll.category_names
    assert names[:3] == ["background", "floor", "wall"] and "mugs" in names and "rock" in names
    for i in range(len(coll)):
        s = coll[i]
        objs = json.loads(s["objects_json"])
        assert [o["source"].split(":")[0] for o in objs] == ["asset"] * len(objs)
        assert [names[o["category_id"]] for o in objs] == [o["category"] for o in objs]


def test_missing_asset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="asset_dirs"):
        discover_assets([str(tmp_path / "nope")])


@pytest.mark.parametrize("kind", ["noise", "stripes", "checker", "gradient"])
def test_procedural_textures_tile_and_vary(kind):
    tex = make_texture(kind, np.random.default_rng(4), 64)
    assert tex.shape == (64, 64, 3) and tex.dtype == np.uint8 and tex.std() > 1
    if kind in ("noise", "gradient"):  # smooth and periodic: the wrap-around step is like an inner step
        t = tex.astype(int)
        for axis in (0, 1):
            jump = np.abs(np.take(t, 0, axis) - np.take(t, -1, axis)).max()
            assert jump <= np.abs(np.diff(t, axis=axis)).max() + 2


def test_photo_textures_from_a_folder(tmp_path):
    img = np.zeros((80, 120, 3), np.uint8)
    img[:, :60] = (255, 0, 0)
    cv2.imwrite(str(tmp_path / "p.png"), img)
    tex = make_texture("photo", np.random.default_rng(0), 32, str(tmp_path))
    assert tex.shape == (32, 32, 3)
    with pytest.raises(FileNotFoundError, match="photo_dir"):
        make_texture("photo", np.random.default_rng(0), 32, str(tmp_path / "none"))
