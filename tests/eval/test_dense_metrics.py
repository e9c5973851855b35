"""Dense metrics against values computed by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from synthssl.train.eval.dense_metrics import ContourMetrics, DepthMetrics, NormalMetrics, SegmentationMetrics


def test_depth_metrics_hand_computed():
    target = torch.tensor([[[1.0, 2.0], [4.0, 0.0]]])  # last pixel invalid
    pred = torch.tensor([[[1.0, 3.0], [3.0, 7.0]]])
    m = DepthMetrics()
    m.update(pred, target)
    out = m.compute()
    # |0|/1, 1/2, 1/4 -> mean 0.25; squared errors 0, 1, 1 -> rmse sqrt(2/3)
    assert out["abs_rel"] == pytest.approx(0.25)
    assert out["rmse"] == pytest.approx(math.sqrt(2 / 3))
    # ratios 1, 1.5, 4/3 -> only the first is < 1.25
    assert out["delta1"] == pytest.approx(100 / 3)


def test_depth_metrics_pool_pixels_not_batches():
    a, b = DepthMetrics(), DepthMetrics()
    t = torch.rand(4, 5, 6) + 0.5
    p = t * (1 + 0.3 * torch.rand(4, 5, 6))
    a.update(p, t)
    b.update(p[:1], t[:1])
    b.update(p[1:], t[1:])
    for k, v in a.compute().items():
        assert b.compute()[k] == pytest.approx(v)


def test_normal_metrics_hand_computed():
    target = torch.zeros(1, 3, 1, 4)
    target[0, 2] = -1.0  # all facing the camera
    target[0, :, 0, 3] = 0  # invalid pixel
    angles = [0.0, 20.0, 45.0]
    pred = torch.zeros(1, 3, 1, 4)
    for i, a in enumerate(angles):
        r = math.radians(a)
        pred[0, 0, 0, i] = 2.0 * math.sin(r)  # length 2: the scale must not matter
        pred[0, 2, 0, i] = -2.0 * math.cos(r)
    pred[0, 0, 0, 3] = 1.0
    m = NormalMetrics()
    m.update(pred, target)
    out = m.compute()
    assert out["mean_angle"] == pytest.approx(65 / 3, abs=1e-6)
    assert out["median_angle"] == pytest.approx(20.0, abs=0.01)
    assert out["under_11.25"] == pytest.approx(100 / 3)
    assert out["under_22.5"] == pytest.approx(200 / 3)
    assert out["under_30"] == pytest.approx(200 / 3)


def test_contour_ods_exact_and_tolerance():
    gt = torch.zeros(1, 1, 6)
    gt[0, 0, 2] = 1
    # perfect probability map -> F = 1 for every threshold in (0, 1)
    m = ContourMetrics(num_thresholds=9, tolerance=0)
    m.update(gt.clone(), gt)
    assert m.compute()["ods_f"] == pytest.approx(1.0)
    # prediction one pixel off: F = 0 without tolerance, 1 with tolerance 1
    shifted = torch.zeros(1, 1, 6)
    shifted[0, 0, 3] = 1
    strict, loose = ContourMetrics(9, 0), ContourMetrics(9, 1)
    strict.update(shifted, gt)
    loose.update(shifted, gt)
    assert strict.compute()["ods_f"] == pytest.approx(0.0)
    assert loose.compute()["ods_f"] == pytest.approx(1.0)


def test_contour_ods_picks_best_threshold():
    gt = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    prob = torch.tensor([[[0.9, 0.4, 0.6, 0.1]]])
    m = ContourMetrics(num_thresholds=3, tolerance=0)  # thresholds 0.25, 0.5, 0.75
    m.update(prob, gt)
    out = m.compute()
    # t=0.25: P=2/3, R=1 -> F=0.8; t=0.5: P=1/2, R=1/2 -> 0.5; t=0.75: P=1, R=1/2 -> 2/3
    assert out["ods_f"] == pytest.approx(0.8)
    assert out["ods_threshold"] == pytest.approx(0.25)
    assert out["ods_precision"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("tolerance", [0, 1, 2])
def test_contour_counts_equal_thresholding_each_map_then_dilating_it(tolerance):
    """The accumulator dilates once and counts every threshold at once; the definition thresholds first."""
    torch.manual_seed(0)
    prob = torch.rand(3, 9, 11)
    prob[0, 0, :4] = torch.tensor([0.25, 0.5, 0.75, float("nan")])  # on a threshold, and NaN (no edge)
    target = (torch.rand(3, 9, 11) > 0.8).float()
    valid = torch.rand(3, 9, 11) > 0.2
    m = ContourMetrics(num_thresholds=3, tolerance=tolerance)  # thresholds 0.25, 0.5, 0.75
    m.update(prob, target, valid)
    gt = target * valid
    pool = (lambda x: x) if tolerance == 0 else (lambda x: F.max_pool2d(x, 2 * tolerance + 1, 1, tolerance))
    gt_near = pool(gt[:, None])[:, 0] > 0.5
    for i, t in enumerate((0.25, 0.5, 0.75)):
        pred = (prob >= t).float() * valid
        pred_near = pool(pred[:, None])[:, 0] > 0.5
        assert m.pred_total[i] == pred.sum()
        assert m.pred_matched[i] == (pred * gt_near).sum()
        assert m.gt_total[i] == gt.sum()
        assert m.gt_matched[i] == (gt * pred_near).sum()


def test_segmentation_miou_hand_computed():
    target = torch.tensor([[[0, 0, 1, 1], [2, 2, 2, 2]]])
    pred = torch.tensor([[[0, 1, 1, 1], [2, 2, 0, 2]]])
    m = SegmentationMetrics(num_classes=4)  # class 3 never occurs -> excluded
    m.update(pred, target)
    out = m.compute()
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 3, fn 1 -> 3/4
    assert out["miou"] == pytest.approx(100 * (1 / 3 + 2 / 3 + 3 / 4) / 3)
    assert out["pixel_acc"] == pytest.approx(100 * 6 / 8)


def test_segmentation_rejects_out_of_range_ids():
    m = SegmentationMetrics(num_classes=2)
    with pytest.raises(ValueError, match="class ids"):
        m.update(torch.tensor([[[0, 2]]]), torch.tensor([[[0, 1]]]))
