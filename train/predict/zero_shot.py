"""The exported heads scored on real depth ground truth, without training on it.

Two real sets (`ZERO_SHOT_DATA`): ``middlebury`` (one image,
`synthssl.train.eval.middlebury`) and ``castel`` (ViSP's 30 RGB-D frames with depth
registered to the image, `synthssl.train.eval.castel`). Each image is fed exactly like a
user's photo (`synthssl.train.predict.feed`), the predicted depth is resized bilinearly to
the ground truth's resolution and scored with
`synthssl.train.eval.zero_shot.depth_zero_shot_metrics` (per-image median scaling); a set
of several images reports the mean over its images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np
import torch

from synthssl.train.eval.castel import RGBDFrame, load_castel
from synthssl.train.eval.middlebury import DEFAULT_ROOT as MIDDLEBURY_ROOT
from synthssl.train.eval.middlebury import RealDepth, load_motorcycle
from synthssl.train.eval.zero_shot import depth_zero_shot_metrics
from synthssl.train.predict.feed import feed_image, to_tensor
from synthssl.train.predict.model import Predictor

__all__ = ["predict_depth", "score_zero_shot", "score_zero_shot_set", "mean_scores", "load_zero_shot", "ZERO_SHOT_DATA"]

#: the real depth sets ``zero_shot_data`` names
ZERO_SHOT_DATA = ("middlebury", "castel")
_MEANS = ("abs_rel", "delta1", "spearman")

RealImage = Union[RealDepth, RGBDFrame]  #: name, rgb uint8 [H, W, 3], depth float [H, W] (0 = unknown), valid


def predict_depth(predictor: Predictor, rgb: np.ndarray, size: int, device: torch.device | str = "cpu") -> np.ndarray:
    """Relative depth float32 [H, W] of uint8 RGB [H, W, 3], at the image's own resolution."""
    fed = feed_image(rgb, size, predictor.multiple)
    x = to_tensor([fed.padded], predictor.mean, predictor.std).to(device)
    h, w = fed.size
    depth = predictor(x)["depth"][0, :h, :w].cpu().numpy()
    return cv2.resize(depth, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


def score_zero_shot(predictor: Predictor, data: RealImage, size: int, device: torch.device | str = "cpu") -> dict:
    """{"dataset", "size", "abs_rel", "delta1", "spearman", "scale", "pixels"} for one real image."""
    depth = predict_depth(predictor, data.rgb, size, device)
    return {"dataset": data.name, "size": int(size), **depth_zero_shot_metrics(depth, data.depth, data.valid)}


def mean_scores(per_image: Sequence[dict]) -> dict:
    """{"abs_rel", "delta1", "spearman": means over the images (spearman over those where it is
    defined; NaN where it is nowhere), "pixels": their sum} of `depth_zero_shot_metrics` dicts."""
    out = {}
    for k in _MEANS:
        finite = [float(r[k]) for r in per_image if np.isfinite(r[k])]
        out[k] = float(np.mean(finite)) if finite else float("nan")
    return {**out, "pixels": int(sum(r["pixels"] for r in per_image))}


def load_zero_shot(data: str, root: str | Path | None = None) -> list[RealImage]:
    """The images of the set ``data`` (one of `ZERO_SHOT_DATA`) from ``root`` (None: the set's
    default folder). A missing file is a one-line FileNotFoundError naming how to get it."""
    if data == "middlebury":
        return [load_motorcycle(root if root is not None else MIDDLEBURY_ROOT)]
    if data == "castel":
        return list(load_castel(root))
    raise ValueError(f"zero_shot_data: {data!r}: expected one of {', '.join(ZERO_SHOT_DATA)}")


def score_zero_shot_set(
    predictor: Predictor, data: str, images: Sequence[RealImage], size: int, device: torch.device | str = "cpu"
) -> dict:
    """One image: `score_zero_shot`'s dict. Several: {"dataset": data, "size", "images",
    "abs_rel", "delta1", "spearman", "pixels" (`mean_scores`), "per_image": each image's
    `score_zero_shot` dict}."""
    if len(images) == 1:
        return score_zero_shot(predictor, images[0], size, device)
    per_image = [score_zero_shot(predictor, image, size, device) for image in images]
    return {
        "dataset": data,
        "size": int(size),
        "images": len(per_image),
        **mean_scores(per_image),
        "per_image": per_image,
    }
