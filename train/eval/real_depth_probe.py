"""Real images with real depth, made ready for frozen-feature depth probes.

A `RealDepthSet` holds real frames (Middlebury 2014 Motorcycle, `synthssl.train.eval.middlebury`;
ViSP's castel RGB-D frames, `synthssl.train.eval.castel`) resized for a backbone: the shorter side
to ``short_side`` pixels and both sides rounded to a multiple of ``multiple`` (the probe features'
stride, so that the feature grid covers the image exactly); the colour with ``cv2.INTER_AREA``, the
depth as the mean of the valid depths under each output pixel (area weights of the valid pixels
only), valid where at least half of that area had a measurement. Units stay those of the source
(Middlebury millimetres, castel metres).

`median_scaled_scores` scores relative depth predictions as the zero-shot protocol does
(`synthssl.train.eval.zero_shot.depth_zero_shot_metrics`: per-image median scaling, AbsRel,
δ<1.25, Spearman ρ) and averages each metric over the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from synthssl.train.eval.zero_shot import depth_zero_shot_metrics

__all__ = ["RealDepthSet", "probe_size", "resize_depth", "real_depth_set", "median_scaled_scores"]


@dataclass(frozen=True)
class RealDepthSet:
    """name; rgb uint8 [N, h, w, 3] and depth float32 [N, h, w] (0 = none) at the probe size; names [N]."""

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    def frames(self, index: Sequence[int]) -> "RealDepthSet":
        """The frames ``index`` (in that order)."""
        idx = np.asarray(index, dtype=np.int64)
        return RealDepthSet(self.name, self.rgb[idx], self.depth[idx], tuple(self.names[i] for i in idx))


def probe_size(height: int, width: int, short_side: int, multiple: int) -> tuple[int, int]:
    """(h, w): the shorter side scaled to ``short_side``, both rounded to a multiple of ``multiple`` (>= 1x)."""
    scale = short_side / min(height, width)

    def rounded(n: int) -> int:
        return max(multiple, int(round(n * scale / multiple)) * multiple)

    return rounded(height), rounded(width)


def resize_depth(depth: np.ndarray, valid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 [h, w]: the area mean of the valid depths of ``depth`` [H, W] under each pixel of ``size``
    (h, w), 0 where less than half of that area was valid."""
    h, w = size
    v = cv2.resize(valid.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    d = cv2.resize(np.where(valid, depth, 0).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    return np.where(v >= 0.5, d / np.maximum(v, 1e-6), 0.0).astype(np.float32)


def real_depth_set(name: str, frames: Sequence, short_side: int, multiple: int) -> RealDepthSet:
    """A `RealDepthSet` of ``frames`` (objects with ``name``, ``rgb`` uint8 [H, W, 3], ``depth`` float [H, W]
    and ``valid`` bool [H, W], all of one size: `middlebury.RealDepth`, `castel.RGBDFrame`)."""
    if not frames:
        raise ValueError(f"{name}: no frames")
    shapes = {f.rgb.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"{name}: frames of several sizes {sorted(shapes)}")
    height, width = frames[0].rgb.shape[:2]
    h, w = probe_size(height, width, short_side, multiple)
    rgb = np.stack([cv2.resize(f.rgb, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    depth = np.stack([resize_depth(f.depth, f.valid, (h, w)) for f in frames])
    return RealDepthSet(name, rgb, depth, tuple(f.name for f in frames))


def median_scaled_scores(pred: np.ndarray, depth: np.ndarray) -> dict[str, float]:
    """{"abs_rel", "delta1", "spearman"}: the zero-shot metrics of predictions float [N, h, w] against
    depth [N, h, w] (0 = none), each image median-scaled, averaged over the images (Spearman ρ over the
    images where it is defined, NaN where it is nowhere: a constant prediction has no ranks)."""
    per_image = [depth_zero_shot_metrics(p, d, d > 0) for p, d in zip(pred, depth)]
    out = {}
    for k in ("abs_rel", "delta1", "spearman"):
        finite = [m[k] for m in per_image if np.isfinite(m[k])]
        out[k] = float(np.mean(finite)) if finite else float("nan")
    return out
