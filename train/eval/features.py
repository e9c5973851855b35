"""Frozen-backbone feature extraction for the image-level probes.

Images go through the same preprocessing as in training: uint8 RGB (grayscale is
replicated to 3 channels) -> float in [0, 1] -> bilinear resize (antialiased) to
``image_size`` x ``image_size`` -> (x - mean) / std. The feature of an image is the
global average of the encoder's last level (c5; for a ResNet what it feeds its fc layer).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from synthssl.core.console import progress as console_progress
from synthssl.train.models.backbone import pooled
from synthssl.train.models.encoder import Encoder
from synthssl.train.models.timm_backbone import is_timm_trunk

__all__ = ["preprocess_images", "pooled_features", "extract_features"]


def preprocess_images(
    images: np.ndarray, image_size: int | None, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """uint8 [N, H, W, 1|3] -> normalised float32 [N, 3, S, S] (S = image_size, or H if None)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 images [N, H, W, 1|3], got {images.dtype} {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if image_size is not None and tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean_t) / std_t).contiguous()


def pooled_features(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """float [N, D] global feature of normalised images [N, 3, H, W].

    Accepts an :class:`~synthssl.train.models.encoder.Encoder` or a bare trunk (torchvision
    ResNet, timm features_only model: pooled c5, fc skipped), or any module returning a
    feature map [N, C, h, w], a list of maps (the last is pooled) or vectors [N, D].
    """
    if isinstance(backbone, torchvision.models.ResNet) or is_timm_trunk(backbone):
        backbone = Encoder(backbone)
    out = backbone(x)
    if isinstance(out, (list, tuple)):
        out = out[-1]
    if out.ndim == 4:
        return pooled(out)
    if out.ndim == 2:
        return out
    raise ValueError(f"backbone output of shape {tuple(out.shape)} is neither [N, C, h, w] nor [N, D]")


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    images: np.ndarray,
    *,
    image_size: int | None,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    progress: str | None = None,
) -> torch.Tensor:
    """float32 [N, D] (on CPU) features of uint8 images [N, H, W, 1|3].

    The backbone is put in eval mode for the extraction and its previous mode restored.
    ``progress``: label of the progress bar or lines (`synthssl.core.console.progress`), None for none.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        chunks = []
        starts = range(0, images.shape[0], batch_size)
        for start in console_progress(starts, progress):
            x = preprocess_images(images[start : start + batch_size], image_size, mean, std).to(device)
            chunks.append(pooled_features(backbone, x).float().cpu())
        if not chunks:
            raise ValueError("extract_features: no images")
        return torch.cat(chunks)
    finally:
        backbone.train(was_training)
