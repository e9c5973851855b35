"""Zero-shot depth metrics against real ground truth whose scale is unknown to the model.

For one image, over its valid pixels (ground truth finite and > 0, prediction finite
and > 0):

- median scaling: ``s = median(gt) / median(pred)``, ``pred' = s * pred`` (per image);
- AbsRel = mean |pred' - gt| / gt;
- δ<1.25 = % of pixels with max(pred' / gt, gt / pred') < 1.25;
- Spearman ρ: rank correlation of pred and gt (average ranks for ties; NaN when either
  is constant); it needs no scaling and also holds for a prediction that is any
  monotone function of depth.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

__all__ = ["median_scale", "depth_zero_shot_metrics", "row_prior_depth"]


def _valid(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    if pred.shape != gt.shape or (valid is not None and valid.shape != gt.shape):
        raise ValueError(
            f"zero-shot depth: shapes differ: pred {pred.shape}, gt {gt.shape}"
            + (f", valid {valid.shape}" if valid is not None else "")
        )
    mask = np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0)
    return mask if valid is None else mask & valid.astype(bool)


def median_scale(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The factor s = median(gt) / median(pred) over the valid pixels."""
    mask = _valid(pred, gt, valid)
    if not mask.any():
        raise ValueError("zero-shot depth: no valid pixel")
    return float(np.median(gt[mask]) / np.median(pred[mask]))


def depth_zero_shot_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """pred, gt: float [H, W] depths (any units; gt > 0 where known); valid: optional bool [H, W].

    Returns {"abs_rel", "delta1" (%), "spearman", "scale" (median factor), "pixels"}.
    """
    mask = _valid(pred, gt, valid)
    if mask.sum() < 2:
        raise ValueError("zero-shot depth: fewer than 2 valid pixels")
    p, g = pred[mask].astype(np.float64), gt[mask].astype(np.float64)
    s = float(np.median(g) / np.median(p))
    q = s * p
    ratio = np.maximum(q / g, g / q)
    rho = spearmanr(p, g).statistic if np.ptp(p) > 0 and np.ptp(g) > 0 else float("nan")  # constant: undefined
    return {
        "abs_rel": float(np.mean(np.abs(q - g) / g)),
        "delta1": float(100.0 * np.mean(ratio < 1.25)),
        "spearman": float(rho) if np.isfinite(rho) else float("nan"),
        "scale": s,
        "pixels": int(mask.sum()),
    }


def row_prior_depth(height: int, width: int) -> np.ndarray:
    """A reference point, not a model: depth float [H, W] = 1 / (row + H/2), i.e. farther
    towards the top of the image (a camera looking at a floor). Heads that score below it
    have learnt less than this prior."""
    rows = np.arange(height, dtype=np.float64)[:, None]
    return np.repeat(1.0 / (rows + height / 2.0), width, axis=1)
