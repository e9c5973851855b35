"""Runs of the pipeline: determinism, resume after an interruption, physics on/off, the CLI."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import trimesh

from synthssl.dataset.reader import ShardCollection
from synthssl.render import cli
from synthssl.render.config import ConfigError, config_from_dict, load_config
from synthssl.render.physics import PhysicsWorld, physics_available
from synthssl.render.pipeline import render_dataset
from synthssl.render.scene import SceneSampler

VIEW_ARRAYS = ("rgb", "depth", "normal", "instance", "contour", "category", "intrinsics", "cam_to_world")
SCENE_ARRAYS = ("scene_id", "overlap", "object_count", "object_pose", "object_scale", "object_category")


def _by_id(directory):
    coll = ShardCollection([str(directory)])
    return {int(coll[i]["scene_id"]): coll[i] for i in range(len(coll))}


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    for sid in a:
        for name in VIEW_ARRAYS + SCENE_ARRAYS + ("objects_json",):
            assert np.array_equal(np.asarray(a[sid][name]), np.asarray(b[sid][name])), (sid, name)


@pytest.mark.slow
@pytest.mark.gl
@pytest.mark.ddp
def test_same_scenes_whatever_workers_and_shard_size(tmp_path, make_config):
    render_dataset(make_config(tmp_path / "a", scenes=3, size=32, shard_size=3, workers=1), progress=False)
    render_dataset(make_config(tmp_path / "b", scenes=3, size=32, shard_size=2, workers=2), progress=False)
    _assert_same(_by_id(tmp_path / "a"), _by_id(tmp_path / "b"))
    assert len(list((tmp_path / "b").glob("shard-*.h5"))) == 2
    ids = {json.loads(p.read_text())["render_id"] for d in "ab" for p in (tmp_path / d).glob("shard-*.json")}
    assert len(ids) == 1  # workers and shard size do not change the render's id


@pytest.mark.gl
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, make_config):
    full = make_config(tmp_path / "full", scenes=5, size=32, shard_size=2)
    render_dataset(full, progress=False)
    part = make_config(tmp_path / "part", scenes=5, size=32, shard_size=2)
    first = render_dataset(part, progress=False, stop_after_shards=1)  # "killed" after one shard
    assert first.shards_written == 1
    dead = tmp_path / "part" / f"shard-00001.h5.tmp-{socket.gethostname()}-{2**22 + 1}"  # above pid_max: dead
    dead.write_bytes(b"half a shard from a killed process")
    mtime = os.stat(tmp_path / "part" / "shard-00000.h5").st_mtime_ns
    resumed = render_dataset(part, resume=True, progress=False)
    assert resumed.shards_skipped == 1 and resumed.shards_written == 2 and resumed.scenes_rendered == 3
    assert not dead.exists()
    assert os.stat(tmp_path / "part" / "shard-00000.h5").st_mtime_ns == mtime  # not re-rendered
    _assert_same(_by_id(tmp_path / "full"), _by_id(tmp_path / "part"))
    again = render_dataset(part, resume=True, progress=False)  # idempotent
    assert again.scenes_rendered == 0 and again.shards_skipped == 3
    manifest = json.loads((tmp_path / "part" / "manifest.json").read_text())
    assert manifest["num_scenes"] == 5 and [e["file"] for e in manifest["shards"]] == [
        "shard-00000.h5",
        "shard-00001.h5",
        "shard-00002.h5",
    ]


@pytest.mark.gl
def test_array_jobs_split_shards_and_conflicting_config_is_refused(tmp_path, make_config):
    for i in range(2):
        render_dataset(
            make_config(tmp_path, scenes=3, size=32, shard_size=1, shard_index=i, num_shards=2), progress=False
        )
    assert sorted(_by_id(tmp_path)) == [0, 1, 2]
    manifest = json.loads((tmp_path / "manifest.json").read_text())  # merged by the last job from 3 sidecars
    assert [e["file"] for e in manifest["shards"]] == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    import h5py

    from synthssl.dataset.schema import categories_sha256
    from synthssl.render.provenance import provenance_of

    want = provenance_of(make_config(tmp_path, scenes=3, size=32, shard_size=1))
    for entry in manifest["shards"]:
        with h5py.File(tmp_path / entry["file"], "r") as f:
            attrs = {k: f.attrs[k] for k in ("render_id", "config_hash", "assets_sha256", "asset_names")}
            names = json.loads(f.attrs["category_names"])
        assert attrs["render_id"] == want.render_id == entry["render_id"]  # the same on both array jobs
        assert json.loads(attrs["asset_names"]) == list(want.asset_names) and attrs["config_hash"] == want.config_hash
        assert entry["compat"]["categories_sha256"] == categories_sha256(names)
        assert entry["compat"]["assets_sha256"] == attrs["assets_sha256"] == want.assets_sha256
        assert (entry["compat"]["height"], entry["compat"]["views"]) == (32, 2)
        assert json.loads((tmp_path / entry["file"]).with_suffix(".json").read_text()) == entry
    assert manifest["category_tables"] == {categories_sha256(names): names}
    with pytest.raises(ValueError, match="seed"):
        render_dataset(make_config(tmp_path, scenes=3, size=32, shard_size=1, seed=99), progress=False)


def _lowest_points(scene):
    return [float((trimesh.transform_points(o.mesh.vertices, o.pose))[:, 2].min()) for o in scene.objects]


def test_placement_without_physics_rests_on_floor_without_overlap():
    cfg = config_from_dict({"physics": {"enabled": False}})
    sampler = SceneSampler(cfg, None)
    for i in range(4):
        scene = sampler.sample(0, i)
        assert np.allclose(_lowest_points(scene), 0.0, atol=1e-9)
        xy = [
            (o.pose[:2, 3], np.max(np.linalg.norm((o.mesh.vertices @ o.pose[:3, :3].T)[:, :2], axis=1)))
            for o in scene.objects
        ]
        for a in range(len(xy)):
            for b in range(a):
                assert np.linalg.norm(xy[a][0] - xy[b][0]) >= xy[a][1] + xy[b][1] - 1e-9


@pytest.mark.skipif(not physics_available(), reason="pybullet not installed")
def test_physics_settles_objects_on_the_floor():
    cfg = config_from_dict({"physics": {"simulate": True}})
    world = PhysicsWorld()
    sampler = SceneSampler(cfg, world)
    lows, steps = [], []
    for i in range(4):
        scene = sampler.sample(0, i)
        lows += _lowest_points(scene)
        steps.append(scene.physics_steps)
        for o in scene.objects:  # poses stay rigid
            R = o.pose[:3, :3]
            assert np.allclose(R @ R.T, np.eye(3), atol=1e-6)
    world.close()
    lows = np.array(lows)
    assert np.all(lows > -0.02)  # no object sunk into the floor (convex-hull contact tolerance)
    assert np.mean(lows < 0.05) > 0.6  # most rest on the floor (others lean on / lie on other objects)
    assert min(steps) < cfg.physics.max_steps  # early stop once at rest


def test_physics_differs_from_plain_placement(make_config):
    simulated = config_from_dict({"physics": {"simulate": True}})
    on = SceneSampler(simulated, PhysicsWorld() if physics_available() else None).sample(0, 0)
    off = SceneSampler(config_from_dict({"physics": {"enabled": False}}), None).sample(0, 0)
    assert len(on.objects) == len(off.objects)
    if physics_available():
        assert not np.allclose(on.objects[0].pose, off.objects[0].pose)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="objects.colour"):
        config_from_dict({"objects": {"colour": 1}})
    with pytest.raises(ConfigError, match="camera.fov"):
        config_from_dict({"camera": {"fov": [10, "wide"]}})
    with pytest.raises(ConfigError, match="size"):
        config_from_dict({"size": 2})
    p = tmp_path / "c.yaml"
    p.write_text("views: 3\nphysics: {enabled: false}\n")
    cfg = load_config(p, {"camera.max_tries": 2})
    assert cfg.views == 3 and cfg.physics.enabled is False and cfg.camera.max_tries == 2
    assert cfg.physics.max_steps == config_from_dict({}).physics.max_steps  # partial sections merge


@pytest.mark.gl
def test_cli_render_validate_preview(tmp_path, capsys):
    out = tmp_path / "shards"
    rc = cli.main(
        [
            f"out={out}",
            "scenes=2",
            "size=32",
            "shard_size=1",
            "physics.enabled=false",
            "backend=auto",
            "--no-progress",
            "appearance.view_light_jitter=0.2",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["scenes_rendered"] == 2 and summary["shards_written"] == 2
    assert cli.main(["validate", str(out), "--deep"]) == 0
    sheet = tmp_path / "sheet.png"
    assert cli.main(["preview", str(out), "--out", str(sheet)]) == 0
    import cv2

    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[0] >= 2 * 2 * 32 and img.shape[1] >= 5 * 32 * 2
    (out / "shard-00001.h5").write_bytes(b"\x89HDF garbage")
    assert cli.main(["validate", str(out)]) == 1
    assert "shard-00001.h5" in capsys.readouterr().err
    assert cli.main([f"out={out}", "objects.nope=1"]) == 2
    with pytest.raises(SystemExit) as info:  # a key is set as key=value, never as a flag
        cli.main([f"out={out}", "--scenes", "2"])
    assert info.value.code == 2


@pytest.mark.gl
@pytest.mark.slow
def test_killed_process_then_resume_loses_and_duplicates_nothing(tmp_path, make_config):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    args = [f"out={out}", "scenes=20", "size=32", "shard_size=1", "seed=7", "backend=auto", "--no-progress"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthssl.render.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 60
    while not (out / "shard-00002.h5").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in out.glob("shard-*.h5"))
    assert 3 <= len(done) < 20, done  # killed in the middle
    assert cli.main([*args, "--resume"]) == 0
    assert cli.main(["validate", str(out), "--deep"]) == 0
    ref = tmp_path / "ref"
    got = _by_id(out)
    assert set(got) == set(range(20))
    # compare a few scenes, including those around the kill, with a fresh uninterrupted render
    render_dataset(make_config(ref, scenes=len(done) + 2, size=32, shard_size=1, seed=7), progress=False)
    want = _by_id(ref)
    _assert_same({k: got[k] for k in want}, want)


@pytest.mark.gl
def test_without_pybullet_physics_falls_back_with_one_notice(tmp_path, make_config, monkeypatch, capsys):
    import synthssl.render.pipeline as pipeline
    import synthssl.render.shard_worker as shard_worker

    for module in (pipeline, shard_worker):  # the run's notice, and the worker's choice
        monkeypatch.setattr(module, "physics_available", lambda: False)
    cfg = make_config(tmp_path, scenes=2, size=32, shard_size=2, physics={"simulate": True})
    summary = render_dataset(cfg, progress=False)
    assert summary.scenes_rendered == 2 and summary.stage_seconds["physics_steps"] == 0
    err = capsys.readouterr().err
    assert err.count("pybullet is not installed") == 1


def test_no_working_backend_names_the_packages(monkeypatch):
    from synthssl.render import gl_compat

    monkeypatch.setattr(gl_compat, "probe_backend", lambda name, timeout=60.0: (False, "cannot open libEGL.so.1"))
    with pytest.raises(gl_compat.BackendError, match="libosmesa6") as info:
        gl_compat.select_working_backend()
    assert "libegl1" in str(info.value)


def test_the_defaults_live_in_the_dataclasses_only_and_print_as_yaml(capsys):
    """No copied default file: --print-config shows the dataclass defaults, a shipped config only its changes."""
    from synthssl.core.config import to_dict
    from synthssl.core.yaml_numbers import safe_load
    from synthssl.render.config import SHIPPED_CONFIGS, RenderConfig

    assert not (SHIPPED_CONFIGS / "default.yaml").exists()
    assert load_config().to_dict() == RenderConfig().to_dict()
    assert cli.main(["--print-config"]) == 0
    assert safe_load(capsys.readouterr().out) == to_dict(RenderConfig())
    demo = load_config("demo")
    assert (demo.scenes, demo.size) == (256, 64) and demo.camera == RenderConfig().camera


@pytest.mark.gl
def test_large_runs_spread_shards_over_subfolders_and_resume_finds_them(tmp_path, make_config, monkeypatch):
    import socket

    import synthssl.dataset.layout as layout

    monkeypatch.setattr(layout, "SHARDS_PER_FOLDER", 2)  # as with 1,000 per folder, in 5 tiny shards
    cfg = make_config(tmp_path, scenes=5, size=16, shard_size=1, physics={"enabled": False})
    render_dataset(cfg, progress=False, stop_after_shards=3)
    dead = tmp_path / "s0001" / f"shard-00003.h5.tmp-{socket.gethostname()}-{2**22 + 7}"  # a dead writer's
    dead.write_bytes(b"half")
    resumed = render_dataset(cfg, resume=True, progress=False)
    assert resumed.shards_skipped == 3 and resumed.shards_written == 2 and not dead.exists()
    m = json.loads((tmp_path / "manifest.json").read_text())
    files = ["s0001/shard-00002.h5", "s0001/shard-00003.h5", "s0002/shard-00004.h5", "shard-00000.h5", "shard-00001.h5"]
    assert [e["file"] for e in m["shards"]] == files and m["num_scenes"] == 5
    assert all((tmp_path / f).with_suffix(".json").is_file() for f in files)
    assert sorted(e["first_scene"] for e in m["shards"]) == [0, 1, 2, 3, 4]
    assert render_dataset(cfg, resume=True, progress=False).shards_skipped == 5
