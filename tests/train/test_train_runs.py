"""End-to-end runs: losses fall, every shipped config runs, photo pairs run, exports load."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torchvision
from helpers.train_overrides import tiny_overrides

from synthssl.train.cli import main
from synthssl.train.config import load_config
from synthssl.train.export import load_backbone
from synthssl.train.trainer import Trainer

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "configs"
OUR_CONFIGS = [
    "demo.yaml",
    "synthetic_contrast.yaml",
    "ablation_contrast.yaml",
    "ablation_properties.yaml",
    "ablation_adaptation.yaml",
    "ablation_dann.yaml",
]
EXPECTED_TERMS = {
    "ablation_contrast.yaml": ({"contrast"}, {"depth", "adv"}),
    "ablation_properties.yaml": ({"contrast", "depth", "normal", "contour"}, {"adv"}),
    "ablation_adaptation.yaml": ({"contrast", "depth", "normal", "contour", "adv", "disc_loss", "disc_acc"}, set()),
    "ablation_dann.yaml": ({"contrast", "depth", "adv", "disc_loss", "grl_coeff"}, set()),
}


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_losses_fall_and_export_loads_into_torchvision(shard_dir, photo_dir, tmp_path):
    out = tmp_path / "run"
    cfg = load_config(
        None,
        tiny_overrides(
            shard_dir,
            photo_dir,
            out,
            **{
                "train.steps": 12,
                "data.batch_size": 8,
                "data.val_fraction": 0.5,
                "optim.lr": 0.002,
                "augment.crop_scale": "[0.8, 1.0]",
                "augment.jitter_p": 0.0,
                "augment.blur_p": 0.0,
            },
        ),
    )
    Trainer(cfg).run()
    rows = _metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 13))

    def mean(key, part):
        return sum(r[key] for r in part) / len(part)

    for key in ("depth", "normal", "contour"):
        assert mean(key, rows[-4:]) < 0.85 * mean(key, rows[:4]), key
    assert mean("contrast", rows[-4:]) < mean("contrast", rows[:4])
    resnet, meta = load_backbone(out / "export")
    assert meta["steps"] == 12 and meta["arch"] == "resnet18" and meta["image_size"] == 32
    plain = torchvision.models.resnet18()
    plain.load_state_dict(torch.load(out / "export" / "backbone.pt"), strict=True)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    torch.testing.assert_close(plain.conv1.weight, ckpt["method"]["encoder.trunk.conv1.weight"])
    assert (out / "config.yaml").is_file()


@pytest.mark.parametrize("name", OUR_CONFIGS)
def test_shipped_config_runs(name, shard_dir, photo_dir, tmp_path):
    out = tmp_path / name
    overrides = tiny_overrides(shard_dir, photo_dir, out, **{"train.steps": 1, "data.batch_size": 2})
    overrides = [o for o in overrides if not o.startswith("method.")]  # keep each config's method section
    assert main([str(CONFIGS / name), *overrides]) == 0
    rows = _metrics(out)
    assert rows[-1]["step"] == 1
    present, absent = EXPECTED_TERMS.get(name, ({"loss"}, set()))
    assert present <= set(rows[-1]) and not (absent & set(rows[-1])), rows[-1]
    assert (out / "export" / "backbone.pt").is_file()


def test_photo_contrast_falls_and_needs_no_adaptation(shard_dir, photo_dir, tmp_path):
    """method.photo_contrast_weight: a SimCLR term on two crops of each real photo, with or without the GAN."""
    out = tmp_path / "photo_contrast"
    Trainer(
        load_config(
            None,
            tiny_overrides(
                shard_dir,
                photo_dir,
                out,
                **{
                    "train.steps": 12,
                    "optim.lr": 0.002,
                    "data.real_batch_size": 8,
                    "method.photo_contrast_weight": 1.0,
                    "method.synthetic.adversarial": "none",
                    "method.synthetic.property_weight": 0.0,
                    "augment.crop_scale": "[0.8, 1.0]",
                    "augment.jitter_p": 0.0,
                    "augment.blur_p": 0.0,
                },
            ),
        )
    ).run()
    rows = _metrics(out)
    assert "photo_contrast" in rows[-1] and "adv" not in rows[-1] and "depth" not in rows[-1]
    first, last = (sum(r["photo_contrast"] for r in part) / 4 for part in (rows[:4], rows[-4:]))
    assert last < first, (first, last)
    for r in rows:  # loss = contrast + photo_contrast (both weight 1)
        assert math.isclose(r["loss"], r["contrast"] + r["photo_contrast"], rel_tol=1e-4), r


def test_decorrelation_terms_are_logged_and_weighted(shard_dir, photo_dir, tmp_path):
    """method.decorrelation_weight / photo_decorrelation_weight: the channel-decorrelation terms on pooled c5
    of the synthetic views and of the real photos enter the loss with their weights; the photo term alone
    makes the batch carry photos (no adaptation here)."""
    out = tmp_path / "decorrelation"
    Trainer(
        load_config(
            None,
            tiny_overrides(
                shard_dir,
                photo_dir,
                out,
                **{
                    "train.steps": 12,
                    "optim.lr": 0.002,
                    "method.decorrelation_weight": 3.0,
                    "method.contrast_weight": 1.0,
                    "method.photo_decorrelation_weight": 2.0,
                    "data.real_batch_size": 6,
                    "method.synthetic.adversarial": "none",
                    "method.synthetic.property_weight": 0.0,
                    "augment.crop_scale": "[0.8, 1.0]",
                    "augment.jitter_p": 0.0,
                    "augment.blur_p": 0.0,
                },
            ),
        )
    ).run()
    rows = _metrics(out)
    for r in rows:  # loss = contrast + 3 * decorrelation + 2 * photo_decorrelation
        assert 0.0 <= r["decorrelation"] <= 1.0 and 0.0 < r["photo_decorrelation"] <= 1.0
        assert "adv" not in r
        assert math.isclose(
            r["loss"], r["contrast"] + 3.0 * r["decorrelation"] + 2.0 * r["photo_decorrelation"], rel_tol=1e-4
        ), r


def test_photo_pairs_without_shards(photo_dir, tmp_path):
    out = tmp_path / "pairs"
    overrides = tiny_overrides(
        Path("unused"),
        photo_dir,
        out,
        **{
            "data.shards": "[]",
            "data.photo_pairs": "true",
            "data.batch_size": 3,
            "train.steps": 3,
            "method.synthetic.property_weight": 0.0,
            "method.synthetic.adversarial": "none",
        },
    )
    Trainer(load_config(None, overrides)).run()
    rows = _metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3] and "contrast" in rows[-1]
    # 3 steps of 3 photos are one epoch of the sampler over the folder's 9 files: the corrupt one is
    # drawn exactly once, skipped (its next file is used instead) and counted once.
    assert rows[-1]["photos_skipped"] == 1


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="needs the dataset-fashion-mnist apt package"
)
def test_online_knn_hook_logs_accuracy(shard_dir, photo_dir, tmp_path):
    out = tmp_path / "knn"
    overrides = tiny_overrides(
        shard_dir,
        photo_dir,
        out,
        **{
            "train.steps": 2,
            "eval.every_steps": 2,
            "eval.online_knn": "{dataset: fashion-mnist, train_size: 40, test_size: 20, k: [5], image_size: 32}",
        },
    )
    trainer = Trainer(load_config(None, overrides))
    trainer.run()
    knn = [r for r in _metrics(out) if "knn/top1_k5" in r]
    assert len(knn) == 1 and knn[0]["step"] == 2
    # The logged figure is the monitor's top-1 of the encoder as trained (step 2 is the last), in steps
    # of 5 % (20 test images).
    from synthssl.train.eval.online import OnlineKNN

    monitor = OnlineKNN.from_config(trainer.cfg.eval.online_knn)
    assert knn[0]["knn/top1_k5"] == pytest.approx(monitor.evaluate(trainer.method.encoder, "cpu")["top1_k5"])
    assert knn[0]["knn/top1_k5"] / 5.0 == pytest.approx(round(knn[0]["knn/top1_k5"] / 5.0))


def test_she_xu_trains_with_a_timm_backbone(shard_dir, photo_dir, tmp_path):
    """She & Xu (contrast + property heads + GAN adaptation) on a timm CNN; its export predicts."""
    pytest.importorskip("timm")
    from synthssl.train.predict.model import load_predictor

    out = tmp_path / "run"
    Trainer(
        load_config(
            None, tiny_overrides(shard_dir, photo_dir, out, **{"train.steps": 2, "model.arch": "timm:convnext_atto"})
        )
    ).run()
    rows = _metrics(out)
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("contrast", "depth", "normal", "contour", "adv", "disc_loss"):
        assert all(math.isfinite(r[key]) for r in rows), key
    trunk, meta = load_backbone(out / "export")
    assert meta["arch"] == "timm:convnext_atto" and meta["timm"]["out_indices"] == [0, 1, 2, 3]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    torch.testing.assert_close(trunk.state_dict()["stem_0.weight"], ckpt["method"]["encoder.trunk.stem_0.weight"])
    depth = load_predictor(out)(torch.zeros(1, 3, 32, 32))["depth"]
    assert depth.shape == (1, 32, 32) and torch.isfinite(depth).all()
