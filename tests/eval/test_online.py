"""Online k-NN monitor: configuration, speed-relevant caching, mode restoration."""

import pytest
import torch

from synthssl.train.eval.online import OnlineKNN, OnlineKNNConfig
from synthssl.train.models.backbone import build_backbone


def test_online_knn_evaluates_and_restores_mode(eval_assets):
    knn = OnlineKNN.from_config(
        {
            "dataset": f"fashion-mnist:{eval_assets['fmnist']}",
            "train_size": 100,
            "test_size": 50,
            "k": [5, 20],
            "image_size": 32,
        }
    )
    assert knn._train.shape == (100, 3, 32, 32)  # preprocessed once, kept in memory
    torch.manual_seed(0)
    backbone = build_backbone("resnet18").train()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    first = knn.evaluate(backbone, "cpu")
    assert backbone.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())  # BN stats untouched
    assert set(first) == {"top1_k5", "top1_k20"}
    assert first["top1_k5"] > 50  # easy fake set, chance is 10 %
    assert knn.evaluate(backbone, "cpu") == first  # deterministic


def test_online_knn_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"eval\.online_knn.*trian_size"):
        OnlineKNN.from_config({"trian_size": 10})
    with pytest.raises(ValueError, match=r"eval\.online_knn\.k\[0\]"):
        OnlineKNN.from_config({"k": ["twenty"]})


def test_online_knn_accepts_dataclass(eval_assets):
    cfg = OnlineKNNConfig(dataset=f"fashion-mnist:{eval_assets['fmnist']}", train_size=20, test_size=10, image_size=32)
    first = OnlineKNN.from_config(cfg)
    assert first.config is cfg
    assert OnlineKNN.from_config(dict(dataset=cfg.dataset, train_size=20, test_size=10, image_size=32)) is first
