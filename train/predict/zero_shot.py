"""The exported heads scored on real depth ground truth, without training on it.

The image is fed exactly like a user's photo (`synthssl.train.predict.feed`), the
predicted depth is resized bilinearly to the ground truth's resolution and scored with
`synthssl.train.eval.zero_shot.depth_zero_shot_metrics` (per-image median scaling).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from synthssl.train.eval.middlebury import RealDepth
from synthssl.train.eval.zero_shot import depth_zero_shot_metrics
from synthssl.train.predict.feed import feed_image, to_tensor
from synthssl.train.predict.model import Predictor

__all__ = ["predict_depth", "score_zero_shot"]


def predict_depth(predictor: Predictor, rgb: np.ndarray, size: int, device: torch.device | str = "cpu") -> np.ndarray:
    """Relative depth float32 [H, W] of uint8 RGB [H, W, 3], at the image's own resolution."""
    fed = feed_image(rgb, size, predictor.multiple)
    x = to_tensor([fed.padded], predictor.mean, predictor.std).to(device)
    h, w = fed.size
    depth = predictor(x)["depth"][0, :h, :w].cpu().numpy()
    return cv2.resize(depth, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


def score_zero_shot(predictor: Predictor, data: RealDepth, size: int, device: torch.device | str = "cpu") -> dict:
    """{"dataset", "size", "abs_rel", "delta1", "spearman", "scale", "pixels"} for one real image."""
    depth = predict_depth(predictor, data.rgb, size, device)
    return {"dataset": data.name, "size": int(size), **depth_zero_shot_metrics(depth, data.depth, data.valid)}
