"""The Python API of training (docs/api.md): train() in this process, load_backbone() from a run or an export."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from helpers.train_overrides import tiny_overrides
from torch import nn

from synthssl.core.config import ConfigError
from synthssl.train import Normalization, SceneDataset, load_backbone, resolve_training_config, train

pytestmark = pytest.mark.slow


def test_train_returns_the_run_folder_and_load_backbone_reads_it(shard_dir, photo_dir, tmp_path):
    out = tmp_path / "run"
    run = train(None, tiny_overrides(shard_dir, photo_dir, out), train__steps=2)
    assert run == out and (run / "export" / "backbone.pt").is_file()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    with pytest.raises(ConfigError, match="already holds a run"):
        train(None, tiny_overrides(shard_dir, photo_dir, out), train__steps=2)

    model = load_backbone(run)
    assert isinstance(model, torchvision.models.ResNet) and isinstance(model.fc, nn.Identity)
    assert (
        not model.training and model.export_meta["steps"] == 2 and model.export_meta["method"] == "synthetic_contrast"
    )
    meta = json.loads((run / "export" / "backbone.json").read_text())
    assert model.normalization == Normalization(tuple(meta["mean"]), tuple(meta["std"]))
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        features = model(model.normalization(images))
    assert features.shape == (2, 512)
    expected = (images - torch.tensor(meta["mean"]).view(3, 1, 1)) / torch.tensor(meta["std"]).view(3, 1, 1)
    torch.testing.assert_close(model.normalization(images), expected)

    plain = torchvision.models.resnet18()
    plain.load_state_dict(torch.load(run / "export" / "backbone.pt"), strict=True)
    with_fc = load_backbone(run / "export", features=False)
    assert isinstance(with_fc.fc, nn.Linear)
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(with_fc.state_dict()[name], value, msg=name)
    torch.testing.assert_close(load_backbone(run / "export" / "backbone.pt").conv1.weight, plain.conv1.weight)

    again = train(None, tiny_overrides(shard_dir, photo_dir, out), overwrite=True, train__steps=1)
    assert again == out and load_backbone(again).export_meta["steps"] == 1
    assert len(list(tmp_path.glob("run.replaced-*"))) == 1  # the first run was moved aside, not deleted


def test_load_backbone_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no exported backbone here"):
        load_backbone(tmp_path)


def test_training_config_forms_and_the_torch_dataset(shard_dir):
    by_name = resolve_training_config("synthetic_contrast", ["train.steps=10"], data={"shards": [str(shard_dir)]})
    assert by_name.train.steps == 10 and by_name.data.shards == [str(shard_dir)] and by_name.data.image_size == 128
    assert resolve_training_config({"train": {"steps": 10}}, data__image_size=128).data.image_size == 128
    with pytest.raises(ConfigError, match="train.stepz"):
        resolve_training_config(None, train__stepz=3)
    scenes = SceneDataset([shard_dir])
    item = scenes[0]
    assert len(scenes) == 24 and item["rgb"].shape == (2, 48, 48, 3) and item["rgb"].dtype.name == "uint8"
