"""What a render is: the render id follows the content config and the asset bytes, and the folder's
identity.json and every shard report the same config hash and asset hash."""

from __future__ import annotations

import hashlib
import json
import re

import h5py
import pytest
import trimesh

from synthssl.dataset.layout import shard_relpaths
from synthssl.render.config import config_from_dict
from synthssl.render.identity import IDENTITY_NAME, IDENTITY_VERSION, FolderConflict
from synthssl.render.pipeline import render_dataset
from synthssl.render.provenance import content_json, provenance_of


@pytest.mark.gl
def test_identity_json_and_every_shard_report_the_same_hashes(tmp_path, make_config):
    cfg = make_config(tmp_path, scenes=3, size=16, shard_size=1, physics={"enabled": False})
    render_dataset(cfg, progress=False)
    identity = json.loads((tmp_path / IDENTITY_NAME).read_text())
    config_hash = hashlib.sha256(content_json(cfg.to_dict()).encode()).hexdigest()
    assert identity == {
        "identity_version": IDENTITY_VERSION,
        "format_version": 1,
        "seed": 7,
        "size": 16,
        "views": 2,
        "shard_size": 1,
        "assets_sha256": provenance_of(cfg).assets_sha256,
        "config_hash": config_hash,
        "render_id": config_hash[:16],
    }
    relpaths = shard_relpaths(tmp_path)
    assert relpaths == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    for rel in relpaths:
        with h5py.File(tmp_path / rel, "r") as f:
            attrs = {k: f.attrs[k] for k in ("config_hash", "assets_sha256", "render_id")}
        assert attrs == {k: identity[k] for k in ("config_hash", "assets_sha256", "render_id")}, rel
        sidecar = json.loads((tmp_path / rel).with_suffix(".json").read_text())
        assert sidecar["compat"]["config_hash"] == identity["config_hash"]
        assert sidecar["compat"]["assets_sha256"] == identity["assets_sha256"]


@pytest.mark.gl
def test_a_folder_of_another_identity_version_is_refused(tmp_path, make_config):
    cfg = make_config(tmp_path, scenes=2, size=16, shard_size=2, physics={"enabled": False})
    render_dataset(cfg, progress=False)
    identity = json.loads((tmp_path / IDENTITY_NAME).read_text())
    (tmp_path / IDENTITY_NAME).write_text(json.dumps({**identity, "identity_version": IDENTITY_VERSION - 1}))
    with pytest.raises(FolderConflict) as info:
        render_dataset(cfg, resume=True, progress=False)
    assert str(info.value) == (
        f"{tmp_path / IDENTITY_NAME}: identity_version: this folder holds a render with "
        f"identity_version={IDENTITY_VERSION - 1}, this run has {IDENTITY_VERSION}; use another out=DIR "
        "(renders never mix in one folder)"
    )


@pytest.mark.gl
def test_another_shard_size_is_another_folder_but_the_same_render_id(tmp_path, make_config):
    cfg = make_config(tmp_path, scenes=2, size=16, shard_size=2, physics={"enabled": False})
    render_dataset(cfg, progress=False)
    other = make_config(tmp_path, scenes=2, size=16, shard_size=1, physics={"enabled": False})
    assert provenance_of(other) == provenance_of(cfg)
    with pytest.raises(
        FolderConflict, match="shard_size: this folder holds a render with shard_size=2, this run has 1"
    ):
        render_dataset(other, progress=False)


def test_render_id_follows_the_content_config_and_the_asset_bytes(tmp_path):
    base = {"out": str(tmp_path / "a"), "scenes": 8, "seed": 1}
    ref = provenance_of(config_from_dict(base))
    assert re.fullmatch(r"[0-9a-f]{16}", ref.render_id) and ref.config_hash.startswith(ref.render_id)
    same = {
        "out": str(tmp_path / "b"),
        "scenes": 80,
        "workers": 2,
        "shard_size": 3,
        "compression": "lzf",
        "shard_index": 1,
        "num_shards": 2,
        "backend": "egl",
    }
    assert provenance_of(config_from_dict({**base, **same})).render_id == ref.render_id
    assert provenance_of(config_from_dict({**base, "seed": 2})).render_id != ref.render_id
    assert provenance_of(config_from_dict({**base, "size": 64})).render_id != ref.render_id
    meshes = tmp_path / "meshes" / "mug"
    meshes.mkdir(parents=True)
    trimesh.creation.box().export(meshes / "a.obj")
    user = {**base, "objects": {"asset_dirs": [str(tmp_path / "meshes")]}}
    first = provenance_of(config_from_dict(user))
    assert "user/mug/a.obj" in first.asset_names and first.assets_sha256 != ref.assets_sha256
    trimesh.creation.box(extents=(1, 2, 3)).export(meshes / "a.obj")  # same name, other bytes
    second = provenance_of(config_from_dict(user))
    assert second.asset_names == first.asset_names and second.assets_sha256 != first.assets_sha256
    no_assets = provenance_of(
        config_from_dict({**base, "objects": {"source_weights": {"primitive": 1.0, "asset": 0.0}}})
    )
    assert no_assets.asset_names == () and no_assets.assets_sha256 == hashlib.sha256(b"").hexdigest()


def test_keys_added_since_the_render_version_are_hashed_only_off_their_old_value():
    from synthssl.render.provenance import ADDED_KEYS, content_config

    default = config_from_dict({})
    for (section, key), old in ADDED_KEYS.items():
        assert getattr(getattr(default, section), key) == old
        assert key not in content_config(default.to_dict())[section]
    other = config_from_dict({"physics": {"simulate": not default.physics.simulate}})
    assert content_config(other.to_dict())["physics"]["simulate"] is other.physics.simulate
    assert provenance_of(other).config_hash != provenance_of(default).config_hash
