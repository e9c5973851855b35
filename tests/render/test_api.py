"""The Python API of rendering (docs/api.md): render_scene equals what render-scenes writes, config forms."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synthssl.core.config import ConfigError
from synthssl.dataset import ShardCollection
from synthssl.dataset.schema import ALL_FIELDS, scene_shape
from synthssl.render import (
    RenderConfig,
    SceneSource,
    load_config,
    render_dataset,
    render_scene,
    resolve_render_config,
)

pytestmark = [pytest.mark.gl, pytest.mark.slow]

#: A small render: 3 scenes in shards of 2, physics on (the default), another seed than 0.
SMALL = ["scenes=3", "size=24", "shard_size=2", "seed=5", "objects.pybullet_assets=false"]


def test_render_scene_returns_the_arrays_the_cli_writes(tmp_path):
    out = tmp_path / "shards"
    cli = [sys.executable, "-m", "synthssl.render.cli", f"out={out}", *SMALL, "--no-progress", "-q"]
    subprocess.run(cli, check=True, capture_output=True, text=True)
    written = ShardCollection([out])
    assert len(written) == 3
    for index in range(3):
        scene = render_scene(None, index, SMALL)
        stored = written[index]
        assert set(scene) == set(ALL_FIELDS) == set(stored)
        for name, spec in ALL_FIELDS.items():
            if spec.dtype is None:
                assert isinstance(scene[name], str) and scene[name] == stored[name], name
                continue
            assert scene[name].dtype == spec.dtype, name
            assert scene[name].shape == scene_shape(name, 24, 24, 2, 16), name
            np.testing.assert_array_equal(scene[name], stored[name], err_msg=f"scene {index}, {name}")
    with SceneSource(None, SMALL) as source:  # the loop form: the same scenes, in any order
        for index in (2, 0):
            for name in ("depth", "instance", "rgb"):
                np.testing.assert_array_equal(source.render(index)[name], written[index][name], err_msg=name)
    with pytest.raises(ValueError, match="closed"):
        source.render(0)


def test_config_forms_give_the_same_config(tmp_path):
    from_name = resolve_render_config("demo", ["size=32"], camera__overlap=[0.3, 0.9])
    assert from_name.size == 32 and from_name.scenes == 256 and from_name.camera.overlap == (0.3, 0.9)
    as_dict = resolve_render_config({"scenes": 256, "size": 32, "camera": {"overlap": [0.3, 0.9]}})
    assert as_dict == from_name
    assert resolve_render_config(from_name) == from_name
    assert resolve_render_config(RenderConfig(), {"camera.overlap": [0.3, 0.9]}, scenes=256, size=32) == from_name
    assert resolve_render_config(None, camera={"max_tries": 3}).camera.overlap == RenderConfig().camera.overlap
    assert load_config("demo", ["size=32", "camera.overlap=[0.3, 0.9]"]) == from_name
    with pytest.raises(ConfigError, match="camera.overlaps"):
        resolve_render_config(None, camera__overlaps=[0.3, 0.9])
    with pytest.raises(ConfigError, match="index"):
        render_scene(None, -1)
    with pytest.raises(ConfigError, match="out: required"):
        render_dataset(None, scenes=1)


def test_render_dataset_writes_a_folder_like_the_cli(tmp_path):
    summary = render_dataset(
        {"scenes": 2, "size": 16, "out": str(tmp_path / "a")}, progress=False, physics__enabled=False
    )
    assert summary.scenes_rendered == 2 and summary.shards_written == 1
    assert (Path(summary.out) / "manifest.json").is_file() and len(ShardCollection([summary.out])) == 2


def test_importing_the_package_loads_neither_torch_nor_the_renderer():
    code = "import sys, synthssl.render; print(sorted(m for m in ('torch', 'pyrender', 'trimesh') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "[]"


def test_a_process_that_rendered_can_then_import_torchvision():
    """Mesa llvmpipe's LLVM and triton's cannot share a process in that order (gl_compat, workaround 6)."""
    code = (
        "from synthssl.render import render_scene\n"
        "render_scene(None, 0, size=16, physics__enabled=False)\n"
        "import torchvision\n"
        "print('imported')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr[-2000:]
