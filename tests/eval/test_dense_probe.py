"""Dense probes learn on toy views; configs are validated; features are cached."""

from pathlib import Path

import numpy as np
import pytest
import torch

from synthssl.train.eval.config import EvalConfig, load_eval_config
from synthssl.train.eval.dense_data import load_dense_views
from synthssl.train.eval.dense_features import DenseFeatures
from synthssl.train.eval.dense_probe import DenseProbeConfig, run_dense_probes
from synthssl.train.eval.fashion_mnist import load_fashion_mnist
from synthssl.train.eval.feature_cache import FeatureCache
from synthssl.train.eval.image_probe import ImageProbeConfig, run_image_probes
from synthssl.train.models.backbone import build_backbone

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "configs"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_dense_views_split_is_disjoint(eval_assets):
    train, test, names = load_dense_views([eval_assets["shards"]], train_scenes=8, test_scenes=4, seed=0)
    assert names[:3] == ["background", "floor", "wall"]
    assert len(train) == 16 and len(test) == 8  # 2 views per scene
    assert not set(train.scene_index.tolist()) & set(test.scene_index.tolist())


def test_dense_views_of_two_renders_count_every_scene(tmp_path):
    """Two renders number their scenes alike (0, 1, ...); the probes' scenes are told apart all the same."""
    from helpers.provenance_shards import provenance_render

    folders = [provenance_render(tmp_path / f"seed{s}", num_scenes=6, size=16, seed=s) for s in (1, 2)]
    train, test, _ = load_dense_views(folders, train_scenes=8, test_scenes=4, seed=0)
    assert len(np.unique(train.scene_index)) == 8 and len(np.unique(test.scene_index)) == 4
    assert len(np.unique(np.concatenate([train.scene_ids, test.scene_ids]))) < 12  # ids repeat across renders


def test_dense_features_grid(eval_assets):
    feats = DenseFeatures(build_backbone("resnet18"), ("c2", "c5"), feature_stride=8)
    out = feats(torch.zeros(2, 3, 32, 48))
    assert out.shape == (2, 64 + 512, 4, 6)


@pytest.mark.parametrize("head", ["linear", pytest.param("light", marks=pytest.mark.slow)])
def test_dense_probe_learns_toy_scenes(eval_assets, head):
    train, test, names = load_dense_views([eval_assets["shards"]], train_scenes=14, test_scenes=6, seed=0)
    torch.manual_seed(0)
    cfg = DenseProbeConfig(head=head, steps=60, batch_size=8, contour_thresholds=19)
    res = run_dense_probes(build_backbone("resnet18"), train, test, len(names), mean=MEAN, std=STD, config=cfg)
    loss = np.array(res.loss_history)
    assert loss[-10:].mean() < 0.8 * loss[:10].mean()  # the probe trains
    # the floor/wall layout is trivial to read off: far better than a constant predictor
    majority = 100 * np.bincount(test.category.ravel()).max() / test.category.size
    assert res.metrics["segmentation"]["pixel_acc"] > majority
    assert res.metrics["depth"]["abs_rel"] < 0.3  # a constant at the mean gives about 0.55
    assert res.metrics["normal"]["mean_angle"] < 35  # facing the camera everywhere gives 45


def test_dense_probe_refuses_unknown_category(eval_assets):
    train, test, names = load_dense_views([eval_assets["shards"]], train_scenes=2, test_scenes=1)
    with pytest.raises(ValueError, match="category_names"):
        run_dense_probes(
            build_backbone("resnet18"), train, test, 2, mean=MEAN, std=STD, config=DenseProbeConfig(steps=1)
        )


def test_image_features_are_cached_on_disk(eval_assets, tmp_path):
    train, test = load_fashion_mnist("train", eval_assets["fmnist"]), load_fashion_mnist("test", eval_assets["fmnist"])
    cfg = ImageProbeConfig(train_size=50, test_size=30, seeds=(0, 1), knn_k=(5,))
    torch.manual_seed(0)
    net = build_backbone("resnet18")
    first = run_image_probes(
        net, train, test, image_size=32, mean=MEAN, std=STD, config=cfg, cache=FeatureCache(tmp_path)
    )
    assert len(list(tmp_path.glob("*.pt"))) == 2  # train and test features
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    again = run_image_probes(
        net, train, test, image_size=32, mean=MEAN, std=STD, config=cfg, cache=FeatureCache(tmp_path)
    )
    assert not calls  # served from disk
    assert again.metrics == first.metrics
    assert first.metrics["knn_k5"]["std"] >= 0 and len(first.metrics["linear"]["values"]) == 2


def test_shipped_eval_yaml_documents_the_defaults():
    assert load_eval_config(CONFIGS / "eval.yaml") == EvalConfig()
    load_eval_config(CONFIGS / "eval_quick.yaml")


def test_config_errors_name_file_and_key(tmp_path):
    bad = tmp_path / "e.yaml"
    bad.write_text("image: {seeds: 3}\n")
    with pytest.raises(ValueError, match=r"e\.yaml: image\.seeds: expected a list"):
        load_eval_config(bad)
    bad.write_text("dense: {head: linear, steps: 1.5}\n")
    with pytest.raises(ValueError, match=r"dense\.steps: expected an integer"):
        load_eval_config(bad)
