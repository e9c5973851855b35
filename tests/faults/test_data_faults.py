"""Data and file faults (issue 11): corrupt chunks, non-finite maps, photos, exports -- one-line errors."""

from __future__ import annotations

import json
import multiprocessing
import shutil

import h5py
import numpy as np
import pytest
import torch
import torchvision
from helpers.faults import corrupt_chunk, one_line, train_args

from synthssl.dataset.errors import ShardFormatError
from synthssl.dataset.reader import Shard
from synthssl.train.cli import main
from synthssl.train.export import load_backbone, save_backbone


def test_a_corrupt_chunk_during_training_names_shard_and_scene(tiny_shards, tmp_path, capsys):
    shards = tmp_path / "shards"
    shutil.copytree(tiny_shards, shards)
    corrupt_chunk(shards / "shard-00001.h5", "rgb", 2)
    config = tmp_path / "c.yaml"
    config.write_text("method: {name: simclr}\n")
    # data.workers=1: the error crosses the DataLoader worker boundary and still reads as one line
    assert main([str(config), *train_args(shards, tmp_path / "run", **{"data.workers": 1})]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(
        f"train-ssl: {shards / 'shard-00001.h5'}: dataset 'rgb': scene 2 (scene id 6) cannot be read (corrupt chunk?)"
    ), line
    # The failed run stopped its loader worker: a worker left alive (it ignores SIGTERM) would keep the
    # interpreter waiting for it at exit.
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("field", ["depth", "normal"])
def test_the_reader_rejects_non_finite_depth_and_normals(tiny_shards, tmp_path, field):
    path = tmp_path / "shard.h5"
    shutil.copy(tiny_shards / "shard-00000.h5", path)
    with h5py.File(path, "r+") as f:
        f[field][1, 0, 3, 3] = np.nan
    shard = Shard(path)
    shard.read_scene(0, ["depth", "normal"])
    with pytest.raises(ShardFormatError, match=rf"dataset '{field}': scene 1 \(scene id 1\) holds non-finite"):
        shard.read_scene(1, [field])


def test_an_all_corrupt_photo_folder_is_one_line(tiny_shards, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"p{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    config = tmp_path / "c.yaml"
    config.write_text("method: {name: simclr}\n")
    assert (
        main(
            [
                str(config),
                *train_args(
                    tiny_shards,
                    tmp_path / "run",
                    **{"data.photos": str(photos), "data.photo_pairs": "true", "data.shards": "[]"},
                ),
            ]
        )
        == 2
    )
    line = one_line(capsys.readouterr().err)
    assert f"data.photos: none of the 3 image files under {photos} can be decoded" in line, line


@pytest.fixture
def export18(tmp_path):
    d = tmp_path / "export"
    save_backbone(
        torchvision.models.resnet18(),
        d,
        arch="resnet18",
        small_stem=False,
        image_size=32,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        method="simclr",
        steps=1,
    )
    return d


def _single_line_error(path) -> str:
    with pytest.raises(ValueError) as e:
        load_backbone(path)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_export_problems_are_one_line_naming_the_file(export18):
    assert load_backbone(export18)[1]["arch"] == "resnet18"
    torch.save(torchvision.models.resnet50().state_dict(), export18 / "backbone.pt")
    msg = _single_line_error(export18)
    assert msg.startswith(f"{export18 / 'backbone.pt'}: does not hold resnet18 weights as backbone.json says"), msg
    assert "missing keys" in msg and "of another shape" in msg

    (export18 / "backbone.pt").write_bytes(b"PK\x03\x04 damaged")
    msg = _single_line_error(export18)
    assert msg.startswith(f"{export18 / 'backbone.pt'}: cannot be read as a backbone state_dict"), msg
    assert "weights_only=False" not in msg

    (export18 / "backbone.json").write_text("")
    msg = _single_line_error(export18)
    assert msg.startswith(f"{export18 / 'backbone.json'}: not a backbone.json"), msg
    (export18 / "backbone.json").write_text(json.dumps({"arch": "resnet18"}))
    assert "missing keys" in _single_line_error(export18)


def test_a_held_out_set_smaller_than_the_probes_ask_for_is_marked_in_the_report(tiny_shards):
    from synthssl.train.eval.dense_data import dense_shortfall, load_dense_views
    from synthssl.train.eval.report import markdown_report

    train, test = load_dense_views([tiny_shards], train_scenes=48, test_scenes=16)[:2]
    note = dense_shortfall(train, test, 48, 16)
    assert note.startswith("the held-out shards gave 6 probe-train and 6 probe-test scenes, fewer than the 48 and 16")
    assert dense_shortfall(train, test, 6, 6) is None
    meta = {"arch": "resnet18", "small_stem": False, "method": "simclr", "steps": 1, "image_size": 32}
    from synthssl.train.eval.report import DENSE_ROWS

    metrics: dict = {}
    for task, metric, _, _ in DENSE_ROWS:
        metrics.setdefault(task, {})[metric] = 0.5
    report = markdown_report(
        {
            "backbones": {"a": {"source": "x", "meta": meta}},
            "dense": {
                "head": "linear",
                "num_train_views": 12,
                "num_test_views": 12,
                "metrics": {"a": metrics},
                "shortfall": note,
            },
        }
    )
    assert f"**Note:** {note}." in report
