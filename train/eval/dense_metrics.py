"""Dense-prediction metrics, accumulated over batches (one accumulator per task).

Every accumulator has ``update(...)`` (tensors of one batch, any device) and
``compute() -> dict[str, float]``. Statistics are pooled over all valid pixels of all
batches (not averaged per image), in float64, so the result does not depend on batching.

Conventions:
- depth: metres along the optical axis; ``valid`` marks pixels with ground truth (depth > 0).
- normals: [B, 3, H, W] vectors in the camera frame; both are normalised before the angle.
- contours: edge probability in [0, 1] against binary ground truth; a predicted edge
  pixel counts as correct if a ground-truth edge lies within ``tolerance`` pixels
  (Chebyshev distance) and vice versa for recall. This is a simplified version of the
  BSDS benchmark (no thinning, no one-to-one matching), documented in docs/eval.md.
- segmentation: integer class maps [B, H, W]; IoU per class from a confusion matrix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["DepthMetrics", "NormalMetrics", "ContourMetrics", "SegmentationMetrics"]


def _check(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: prediction {tuple(a.shape)} and target {tuple(b.shape)} differ in shape")


class DepthMetrics:
    """AbsRel = mean |d - d*| / d*, RMSE = sqrt(mean (d - d*)^2) in metres, and
    delta1 = % of pixels with max(d / d*, d* / d) < 1.25, over valid pixels."""

    def __init__(self) -> None:
        self.abs_rel = self.sq = self.delta1 = 0.0
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """pred, target: float [B, H, W] metres; valid: bool [B, H, W] (default target > 0)."""
        _check("depth", pred, target)
        valid = (target > 0) if valid is None else valid & (target > 0)
        p = pred[valid].double().clamp_min(1e-6)
        t = target[valid].double()
        self.abs_rel += ((p - t).abs() / t).sum().item()
        self.sq += (p - t).pow(2).sum().item()
        self.delta1 += (torch.maximum(p / t, t / p) < 1.25).sum().item()
        self.count += int(t.numel())

    def compute(self) -> dict[str, float]:
        n = max(self.count, 1)
        return {"abs_rel": self.abs_rel / n, "rmse": math.sqrt(self.sq / n), "delta1": 100.0 * self.delta1 / n}


class NormalMetrics:
    """Angular error between predicted and true normals in degrees: mean, median
    (from a 0.01-degree histogram) and % of pixels under 11.25, 22.5 and 30 degrees."""

    THRESHOLDS = (11.25, 22.5, 30.0)
    _BINS = 18000  # 0.01 degree bins over [0, 180]

    def __init__(self) -> None:
        self.sum = 0.0
        self.count = 0
        self.under = [0] * len(self.THRESHOLDS)
        self.histogram = torch.zeros(self._BINS, dtype=torch.float64)

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """pred, target: float [B, 3, H, W]; valid: bool [B, H, W] (default: target is non-zero)."""
        _check("normals", pred, target)
        if valid is None:
            valid = target.abs().sum(dim=1) > 0
        cos = (F.normalize(pred.double(), dim=1) * F.normalize(target.double(), dim=1)).sum(dim=1)
        angle = torch.rad2deg(torch.acos(cos[valid].clamp(-1.0, 1.0))).cpu()
        self.sum += angle.sum().item()
        self.count += int(angle.numel())
        for i, t in enumerate(self.THRESHOLDS):
            self.under[i] += int((angle < t).sum().item())
        bins = (angle / 180.0 * self._BINS).long().clamp_(0, self._BINS - 1)
        self.histogram += torch.bincount(bins, minlength=self._BINS).double()

    def compute(self) -> dict[str, float]:
        n = max(self.count, 1)
        cumulative = self.histogram.cumsum(0)
        median_bin = int(torch.searchsorted(cumulative, torch.tensor([n / 2.0], dtype=torch.float64)).item())
        out = {"mean_angle": self.sum / n, "median_angle": (median_bin + 0.5) * 180.0 / self._BINS}
        for t, c in zip(self.THRESHOLDS, self.under):
            out[f"under_{t:g}"] = 100.0 * c / n
        return out


class ContourMetrics:
    """ODS F-score: precision/recall are pooled over the whole set for each of
    ``num_thresholds`` thresholds evenly spaced in (0, 1); ODS is the best F over them."""

    def __init__(self, num_thresholds: int = 99, tolerance: int = 1) -> None:
        if num_thresholds < 1 or tolerance < 0:
            raise ValueError(
                f"contour metrics: need num_thresholds >= 1 and tolerance >= 0, got {num_thresholds}, {tolerance}"
            )
        self.thresholds = torch.linspace(0, 1, num_thresholds + 2, dtype=torch.float64)[1:-1]
        self.tolerance = tolerance
        zeros = lambda: torch.zeros(num_thresholds, dtype=torch.float64)  # noqa: E731
        self.pred_total, self.pred_matched, self.gt_total, self.gt_matched = zeros(), zeros(), zeros(), zeros()

    def _dilate(self, x: torch.Tensor) -> torch.Tensor:
        if self.tolerance == 0:
            return x
        k = 2 * self.tolerance + 1
        return F.max_pool2d(x, k, stride=1, padding=self.tolerance)

    def update(self, prob: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """prob: float [B, H, W] edge probability; target: [B, H, W] {0, 1}; valid: bool [B, H, W]."""
        _check("contours", prob, target)
        gt = (target > 0.5).double()
        keep = torch.ones_like(gt) if valid is None else valid.double()
        gt = gt * keep
        gt_near = self._dilate(gt[:, None])[:, 0] > 0.5
        # pixels outside ``valid`` (and NaN probabilities) predict no edge at any threshold
        masked = torch.where((keep > 0) & ~prob.isnan(), prob.double(), -math.inf)
        # thresholding commutes with the dilation (a max filter), so one dilation serves every threshold:
        # a predicted edge at threshold t lies within tolerance of a pixel iff the dilated map there is >= t
        near = self._dilate(masked[:, None])[:, 0]
        self.pred_total += self._at_or_above(masked.reshape(-1))
        self.pred_matched += self._at_or_above(masked[gt_near])
        self.gt_total += gt.sum().item()
        self.gt_matched += self._at_or_above(near[gt > 0.5])

    def _at_or_above(self, values: torch.Tensor) -> torch.Tensor:
        """float64 [T]: for each threshold t, how many of ``values`` (float64) are >= t (exact counts)."""
        below_or_at = torch.searchsorted(self.thresholds, values.contiguous(), right=True)  # thresholds <= value
        histogram = torch.bincount(below_or_at, minlength=self.thresholds.numel() + 1).double()
        return histogram.flip(0).cumsum(0).flip(0)[1:]

    def compute(self) -> dict[str, float]:
        precision = torch.where(self.pred_total > 0, self.pred_matched / self.pred_total.clamp_min(1), 1.0)
        recall = self.gt_matched / self.gt_total.clamp_min(1)
        f = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12), 0.0)
        best = int(f.argmax().item())
        return {
            "ods_f": float(f[best]),
            "ods_threshold": float(self.thresholds[best]),
            "ods_precision": float(precision[best]),
            "ods_recall": float(recall[best]),
        }


class SegmentationMetrics:
    """mIoU over the classes that occur (in prediction or ground truth) and pixel accuracy.

    IoU_c = TP_c / (TP_c + FP_c + FN_c); classes with an empty union are left out of the mean.
    """

    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"segmentation metrics: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64)  # [true, pred]

    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """pred, target: long [B, H, W] class ids in [0, num_classes); valid: bool [B, H, W]."""
        _check("segmentation", pred, target)
        p, t = pred.long().cpu(), target.long().cpu()
        if valid is not None:
            keep = valid.cpu()
            p, t = p[keep], t[keep]
        if t.numel() and (t.min() < 0 or t.max() >= self.num_classes or p.min() < 0 or p.max() >= self.num_classes):
            raise ValueError(f"segmentation: class ids must lie in [0, {self.num_classes})")
        idx = t.reshape(-1) * self.num_classes + p.reshape(-1)
        self.confusion += (
            torch.bincount(idx, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes).double()
        )

    def per_class_iou(self) -> torch.Tensor:
        """float64 [C] IoU per class, NaN for classes with an empty union."""
        tp = self.confusion.diag()
        union = self.confusion.sum(0) + self.confusion.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp_min(1), torch.nan)

    def compute(self) -> dict[str, float]:
        iou = self.per_class_iou()
        present = ~iou.isnan()
        total = self.confusion.sum().item()
        return {
            "miou": 100.0 * float(iou[present].mean()) if present.any() else 0.0,
            "pixel_acc": 100.0 * self.confusion.diag().sum().item() / max(total, 1),
        }
