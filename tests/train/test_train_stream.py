"""data.stream: the scenes a run trains on are the render config's scenes p * world + rank, whatever the
number of render workers; a run trains from them, and a resumed run trains on exactly the scenes of an
uninterrupted one."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from helpers.faults import child_pids, cmdline
from helpers.train_overrides import STREAM_RENDER, STREAM_SET, stream_overrides

from synthssl.dataset.stream_slots import leftover_blocks
from synthssl.render.api import SceneSource
from synthssl.train.config import ConfigError, load_config
from synthssl.train.data.scenes import view_pair
from synthssl.train.data.stream import SceneStream
from synthssl.train.trainer import Trainer

pytestmark = [pytest.mark.gl, pytest.mark.ddp]

FIELDS = ("depth", "normal", "contour", "instance", "category", "intrinsics", "cam_to_world")


def _expected(scene: dict, name: str, views=None) -> np.ndarray:
    value = scene[name].astype(np.int16) if name in ("instance", "category") else scene[name]
    return value if views is None else value[views]


def _stream_workers() -> list[int]:
    return [pid for pid in child_pids(os.getpid()) if "synthssl.render.stream" in cmdline(pid)]


@pytest.mark.slow
def test_stream_scenes_are_the_configs_scenes_p_times_world_plus_rank_whatever_the_workers():
    overrides = ["size=32"]  # physics on: placement must not depend on which worker renders a scene
    batches = {}
    for workers in (1, 2):
        with SceneStream(STREAM_RENDER, overrides, workers=workers, fields=FIELDS, batch=3, rank=1, world=2) as s:
            assert (s.info.size, s.info.views) == (32, 2) and len(s.info.render_id) == 16
            s.start(2)
            batches[workers] = [s.next_batch(), s.next_batch()]
            assert s.position == 8 and s.state(8)["position"] == 8
    for one, two in zip(batches[1], batches[2]):
        assert list(one) == ["rgb", *FIELDS, "scene_id"]
        for name in one:
            assert torch.equal(one[name], two[name]), name
    indices = [p * 2 + 1 for p in range(2, 8)]
    got = {k: torch.cat([b[k] for b in batches[1]]) for k in batches[1][0]}
    assert got["scene_id"].tolist() == indices and got["scene_id"].dtype == torch.int64
    assert got["instance"].dtype == torch.int16 and got["normal"].dtype == torch.float16
    with SceneSource(STREAM_RENDER, overrides) as source:
        for row, index in enumerate(indices):
            scene = source.render(index)
            for name in ("rgb", *FIELDS):
                assert np.array_equal(got[name][row].numpy(), _expected(scene, name)), (index, name)
    assert not _stream_workers()


@pytest.mark.slow
def test_scenes_with_more_views_give_the_pair_scene_dataset_would_draw():
    overrides = [*STREAM_SET, "views=3"]
    with SceneStream(STREAM_RENDER, overrides, workers=1, fields=("depth",), batch=2, pair_seed=5) as s:
        s.start(4)
        batch = s.next_batch()
    assert batch["rgb"].shape == (2, 2, 32, 32, 3) and batch["scene_id"].tolist() == [4, 5]
    with SceneSource(STREAM_RENDER, overrides) as source:
        for row, position in enumerate((4, 5)):
            pair = view_pair(5, 3, position)
            scene = source.render(position)
            assert np.array_equal(batch["rgb"][row].numpy(), scene["rgb"][pair])
            assert np.array_equal(batch["depth"][row].numpy(), scene["depth"][pair])


@pytest.mark.slow
def test_train_ssl_trains_three_steps_from_the_stream_and_leaves_nothing_behind(tmp_path, capsys):
    from synthssl.train.cli import main

    before = leftover_blocks()
    out = tmp_path / "run"
    assert main(stream_overrides(out, workers=2, **{"train.steps": 3})) == 0
    err = capsys.readouterr().err
    assert "scenes rendered while training from demo size=32 physics.enabled=false (32 px, 2 views" in err
    assert "by 2 render workers per rank, each scene once" in err
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["stream"]["position"] == 3 * 4 and state["stream"]["render"] == STREAM_RENDER
    assert state["stream"]["overrides"] == list(STREAM_SET) and state["shards"] == {}
    assert (out / "export" / "backbone.pt").is_file()
    assert leftover_blocks() == before and not _stream_workers()


def _cfg(out, **extra):
    return load_config(None, stream_overrides(out, **{"train.steps": 4, "train.checkpoint_every": 2, **extra}))


@pytest.mark.slow
def test_resume_trains_on_the_scenes_of_an_uninterrupted_run_with_any_worker_count(tmp_path):
    Trainer(_cfg(tmp_path / "full")).run()
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)

    killed_run = Trainer(_cfg(tmp_path / "resumed"))
    killed_run.run(stop_after=3)  # checkpoint at step 2, dies during step 3
    killed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert killed["step"] == 2 and killed["stream"]["position"] == 2 * 4
    assert killed_run.data.stream.position == 3 * 4  # a batch fetched for a step not taken is not recorded
    assert killed_run.stream_state(2)["position"] == 2 * 4
    Trainer(_cfg(tmp_path / "resumed", **{"data.stream_workers": 2}), resume=True).run()
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)

    assert resumed["step"] == full["step"] == 4
    assert resumed["stream"] == full["stream"] and full["stream"]["position"] == 4 * 4
    for name, value in full["method"].items():
        torch.testing.assert_close(resumed["method"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    lines = [json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]
    for a, b in zip(lines, ref):
        assert abs(a["loss"] - b["loss"]) < 1e-4 * max(1, abs(b["loss"]))
    assert not _stream_workers()


@pytest.mark.slow
def test_resume_refuses_a_render_config_that_now_renders_other_scenes(tmp_path):
    render = tmp_path / "render.yaml"
    render.write_text("size: 32\nphysics:\n  enabled: false\n")
    cfg = _cfg(tmp_path / "run", **{"train.steps": 1, "data.stream": str(render), "data.stream_set": "[]"})
    Trainer(cfg).run()
    render.write_text("size: 32\nseed: 1\nphysics:\n  enabled: false\n")  # the same keys, other scenes
    with pytest.raises(ConfigError) as info:
        Trainer(cfg, resume=True)
    message = str(info.value)
    assert message.startswith(f"--resume: data.stream={render} now renders other scenes than the checkpoint")
    assert "start a new run" in message
    assert not _stream_workers()
