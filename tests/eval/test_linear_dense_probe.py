"""The dense benchmark's building blocks: linear probes on cached features, the real depth sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthssl.train.eval.dense_metrics import SegmentationMetrics
from synthssl.train.eval.dense_probe_protocol import validation_split
from synthssl.train.eval.linear_dense_probe import (
    Standardiser,
    Upsampler,
    fit_probe,
    predict_tasks,
    present_miou,
    probe_losses,
)
from synthssl.train.eval.real_depth_probe import (
    median_scaled_scores,
    probe_size,
    real_depth_set,
    resize_depth,
)


@pytest.mark.parametrize("source, size", [((8, 8), (64, 64)), ((3, 5), (17, 40)), ((12, 16), (6, 9))])
def test_upsampler_is_bilinear_interpolation(source, size):
    x = torch.randn(2, 5, *source)
    expected = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    assert torch.allclose(Upsampler(source, size)(x), expected, atol=1e-5)


def test_the_folded_standardisation_is_standardise_then_linear():
    torch.manual_seed(0)
    raw = (torch.randn(6, 4, 4, 10) * 3 + 1).half()
    targets = {"segmentation": torch.randint(0, 3, (6, 16, 16))}
    probe = fit_probe(raw, targets, {"segmentation": 1e-2}, steps=5, batch_size=3, seed=0, num_categories=3)
    head = probe.heads["segmentation"]
    st = Standardiser.fit(raw)
    assert torch.equal(st.mean, probe.standardiser.mean)
    logits = F.linear((raw.float() - st.mean) / st.std, head.weight, head.bias).permute(0, 3, 1, 2)
    expected = F.interpolate(logits, size=(16, 16), mode="bilinear", align_corners=False).argmax(1)
    assert torch.equal(predict_tasks(probe, raw, (16, 16))["segmentation"], expected)


def test_heads_start_as_the_constant_predictors():
    raw = torch.randn(4, 2, 2, 3).half()
    depth = torch.full((4, 8, 8), 2.5)
    depth[0, 0, 0] = 0.0  # no ground truth there
    normal = torch.zeros(4, 3, 8, 8)
    normal[:, 2] = -1.0  # facing the camera
    probe = fit_probe(
        raw,
        {"depth": depth, "normal": normal},
        {"depth": 1e-3, "normal": 1e-3},
        steps=1,
        batch_size=4,
        seed=0,
        curve_at=(0,),
    )
    assert probe.curve["depth"][0] == (0, pytest.approx(0.0, abs=1e-6))  # bias = mean log depth: exact
    assert probe.curve["normal"][0] == (0, pytest.approx(0.0, abs=1e-6))


def test_probe_losses_weight_batches_by_their_size():
    raw = torch.zeros(3, 1, 1, 2).half()
    depth = torch.tensor([1.0, 1.0, np.e]).view(3, 1, 1).expand(3, 4, 4).contiguous()
    probe = fit_probe(raw, {"depth": depth}, {"depth": 1e-9}, steps=1, batch_size=3, seed=0)
    # the bias is the mean log depth 1/3; |1/3 - 0| twice and |1/3 - 1| once: (1/3 + 1/3 + 2/3) / 3
    assert probe_losses(probe, raw, {"depth": depth}, batch_size=2)["depth"] == pytest.approx(4 / 9, abs=1e-6)


def test_present_miou_counts_only_categories_in_the_ground_truth():
    m = SegmentationMetrics(4)
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 2, 1, 3]]])  # classes 2 and 3 only predicted
    m.update(pred, target)
    # class 0: TP 1, FN 1 -> 1/2; class 1: TP 1, FN 1 -> 1/2; classes 2, 3 (IoU 0) are left out
    assert present_miou(m) == pytest.approx(50.0)
    assert m.compute()["miou"] == pytest.approx(25.0)  # the mean over classes in prediction or truth


def test_validation_split_keeps_scenes_whole():
    groups = np.repeat(np.arange(8), 2)  # 8 scenes of 2 views
    fit, val = validation_split(groups, 0.25, seed=0)
    assert len(val) == 4 and len(fit) == 12
    assert not set(groups[fit]) & set(groups[val])
    assert np.array_equal(validation_split(groups, 0.25, seed=0)[1], val)  # seeded


def test_probe_size_rounds_to_the_stride():
    assert probe_size(480, 640, 96, 8) == (96, 128)
    assert probe_size(500, 741, 96, 8) == (96, 144)  # 142.3 -> 144


def test_resize_depth_averages_the_valid_depths_only():
    depth = np.array([[1.0, 3.0, 0.0, 0.0], [5.0, 7.0, 2.0, 0.0]], np.float32)
    out = resize_depth(depth, depth > 0, (1, 2))
    # left 2x2: all valid, mean 4; right 2x2: one valid pixel of four (< half): no depth
    assert out.tolist() == [[4.0, 0.0]]


class _Frame:
    def __init__(self, name, rgb, depth):
        self.name, self.rgb, self.depth, self.valid = name, rgb, depth, depth > 0


def test_real_depth_set_and_median_scaled_scores():
    rgb = np.zeros((48, 64, 3), np.uint8)
    depth = np.tile(np.linspace(1.0, 4.0, 64, dtype=np.float32), (48, 1))
    s = real_depth_set("toy", [_Frame("a", rgb, depth), _Frame("b", rgb, 2 * depth)], 24, 8)
    assert s.rgb.shape == (2, 24, 32, 3) and s.depth.shape == (2, 24, 32) and s.names == ("a", "b")
    assert s.frames([1]).names == ("b",)
    scores = median_scaled_scores(0.5 * s.depth, s.depth)  # any scale: median scaling undoes it
    assert scores["abs_rel"] == pytest.approx(0.0, abs=1e-6) and scores["delta1"] == 100.0
    with pytest.raises(ValueError, match="several sizes"):
        real_depth_set("toy", [_Frame("a", rgb, depth), _Frame("c", rgb[:40], depth[:40])], 24, 8)
