"""Dense probes of a frozen backbone on rendered views: depth, normals, contours, categories.

Protocol (fixed, deterministic on CPU):
1. features of every probe-train and probe-test view are computed once by the frozen
   backbone (:class:`~synthssl.train.eval.dense_features.DenseFeatures`) at the views'
   native resolution and kept in memory as float16;
2. each channel is standardised with the probe-train mean/std (std floored at 10 % of
   the mean channel std; a fixed affine map, so a 1x1-conv head on top is still a
   linear probe);
3. heads (:mod:`~synthssl.train.eval.dense_heads`) start from ``torch.manual_seed(seed)``
   with zero last-layer weights (a constant predictor: depth at the mean log depth,
   normals facing the camera)
   and are trained for ``steps`` Adam steps (cosine learning-rate decay) on
   mini-batches drawn by a seeded generator;
4. metrics (:mod:`~synthssl.train.eval.dense_metrics`) on the probe-test views at full
   resolution (predictions bilinearly upsampled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthssl.core.console import progress as console_progress
from synthssl.train.eval.dense_data import DenseViews
from synthssl.train.eval.dense_features import DenseFeatures
from synthssl.train.eval.dense_heads import DenseHeads, dense_probe_losses
from synthssl.train.eval.dense_metrics import ContourMetrics, DepthMetrics, NormalMetrics, SegmentationMetrics
from synthssl.train.eval.features import preprocess_images

__all__ = ["DenseProbeConfig", "DenseProbe", "DenseProbeResult", "run_dense_probes", "channel_statistics"]


@dataclass(frozen=True)
class DenseProbeConfig:
    """Dense-probe settings (YAML section ``dense``)."""

    head: str = "linear"
    """linear (1x1 conv per task) or light (conv3x3-BN-ReLU-conv1x1)."""
    hidden: int = 128
    """light head width."""
    levels: tuple[str, ...] = ("c3", "c4", "c5")
    """backbone levels concatenated."""
    feature_stride: int = 8
    """every level resampled to H/stride x W/stride."""
    train_scenes: int = 48
    """probe-train scenes (all views of each)."""
    test_scenes: int = 16
    """probe-test scenes, disjoint from the probe-train scenes."""
    split: str | None = None
    """null = every scene of the shards; "val" = ShardCollection's hash split."""
    val_fraction: float = 0.0
    """with split: val."""
    steps: int = 300
    """Adam steps, cosine decay."""
    batch_size: int = 16
    """views per probe step."""
    lr: float = 1e-3
    """Adam learning rate."""
    seed: int = 0
    """probe initialisation and sampling seed."""
    contour_thresholds: int = 99
    """thresholds of the contour ODS F-score."""
    contour_tolerance: int = 1
    """pixels (Chebyshev) for contour matching."""


class DenseProbe(nn.Module):
    """Frozen dense features -> standardisation -> task heads. The given encoder (an `Encoder`
    or a bare trunk) is shared, not copied, and its parameters are frozen in place (requires_grad False)."""

    def __init__(
        self,
        encoder: nn.Module,
        num_categories: int,
        mean: Sequence[float],
        std: Sequence[float],
        config: DenseProbeConfig,
    ):
        super().__init__()
        self.features = DenseFeatures(encoder, config.levels, config.feature_stride).eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.heads = DenseHeads(self.features.channels, num_categories, config.head, config.hidden)
        self.register_buffer("feat_mean", torch.zeros(1, self.features.channels, 1, 1))
        self.register_buffer("feat_std", torch.ones(1, self.features.channels, 1, 1))
        self.image_mean, self.image_std = tuple(mean), tuple(std)

    @torch.no_grad()
    def raw_features(self, rgb: np.ndarray, device, batch_size: int = 32) -> torch.Tensor:
        """float16 [N, C, h, w] (CPU) frozen features of uint8 RGB [N, H, W, 3] at native size."""
        self.features.eval()
        out = []
        for s in range(0, rgb.shape[0], batch_size):
            x = preprocess_images(rgb[s : s + batch_size], None, self.image_mean, self.image_std).to(device)
            out.append(self.features(x).half().cpu())
        return torch.cat(out)

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw.float() - self.feat_mean) / self.feat_std

    def head_outputs(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.standardise(raw))

    @torch.no_grad()
    def predict(self, rgb: np.ndarray, device="cpu", raw: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Full-resolution predictions for uint8 RGB [N, H, W, 3] (CPU tensors):
        depth [N, H, W] metres (clamped to [1e-3, 2.2e4]), normal [N, 3, H, W] unit, contour [N, H, W] probability,
        segmentation [N, H, W] category id, features [N, C, h, w] (standardised)."""
        self.eval()
        raw = self.raw_features(rgb, device) if raw is None else raw
        h, w = rgb.shape[1:3]
        feats = self.standardise(raw.to(device))
        up = {
            t: F.interpolate(o, size=(h, w), mode="bilinear", align_corners=False) for t, o in self.heads(feats).items()
        }
        log_depth = up["depth"][:, 0].clamp(-7.0, 10.0)  # exp -> [1 mm, 22 km]: finite on any input
        return {
            "depth": log_depth.exp().cpu(),
            "normal": F.normalize(up["normal"], dim=1).cpu(),
            "contour": up["contour"][:, 0].sigmoid().cpu(),
            "segmentation": up["segmentation"].argmax(1).cpu(),
            "features": feats.cpu(),
        }


@dataclass
class DenseProbeResult:
    """metrics: task -> metric name -> value; probe: the trained probe (for figures);
    test_features: float16 [N, C, h, w] raw features of the probe-test views;
    loss_history: total training loss per step."""

    metrics: dict[str, dict[str, float]]
    probe: DenseProbe
    test_features: torch.Tensor
    loss_history: list[float]


def _targets(views: DenseViews, idx: np.ndarray, device) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(views.depth[idx]).to(device),
        torch.from_numpy(views.normal[idx]).permute(0, 3, 1, 2).to(device),
        torch.from_numpy(views.contour[idx]).to(device),
        torch.from_numpy(views.category[idx]).to(device),
    )


def run_dense_probes(
    encoder: nn.Module,
    train: DenseViews,
    test: DenseViews,
    num_categories: int,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    config: DenseProbeConfig = DenseProbeConfig(),
    device: torch.device | str = "cpu",
    progress: str | None = None,
) -> DenseProbeResult:
    """Train the heads on ``train`` views and score them on ``test`` views."""
    if int(max(train.category.max(), test.category.max())) >= num_categories:
        raise ValueError(
            f"dense probes: category ids reach {int(max(train.category.max(), test.category.max()))} "
            f"but the shards name only {num_categories} categories (root attr category_names)"
        )
    torch.manual_seed(config.seed)
    probe = DenseProbe(encoder, num_categories, mean, std, config).to(device)
    train_raw = probe.raw_features(train.rgb, device)
    test_raw = probe.raw_features(test.rgb, device)
    _fit_standardisation(probe, train_raw)
    _init_heads(probe, train)
    positives = float(train.contour.mean())
    pos_weight = float(min(50.0, (1 - positives) / positives)) if positives > 0 else 1.0
    # The head's kernels are tiny: on CPU one thread is several times faster than two
    # (measured 7x on the 2-core dev machine), so training runs single-threaded there.
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        history = _train_heads(probe, train, train_raw, pos_weight, config, device, progress)
    finally:
        torch.set_num_threads(threads)
    return _score(probe, test, test_raw, num_categories, config, history)


def channel_statistics(train_raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std), float [1, C, 1, 1] each, of probe-train features [N, C, h, w] per channel; near-constant
    channels' std is floored at 10 % of the mean channel std so that test views cannot blow them up."""
    flat = train_raw.float().transpose(0, 1).reshape(train_raw.shape[1], -1)
    channel_std = flat.std(1)
    floor = max(0.1 * float(channel_std.mean()), 1e-6)
    return flat.mean(1).view(1, -1, 1, 1), channel_std.clamp_min(floor).view(1, -1, 1, 1)


def _fit_standardisation(probe: DenseProbe, train_raw: torch.Tensor) -> None:
    """The probe's standardisation from the probe-train features (`channel_statistics`)."""
    mean, std = channel_statistics(train_raw)
    probe.feat_mean.copy_(mean)
    probe.feat_std.copy_(std)


@torch.no_grad()
def _init_heads(probe: DenseProbe, train: DenseViews) -> None:
    """Constant predictors: zero last-layer weights and biases, except depth (mean log
    depth, so the first steps are not spent finding the scale) and normals (facing the
    camera, never a zero vector)."""

    def last(task: str) -> nn.Conv2d:
        head = probe.heads.heads[task]
        return head if isinstance(head, nn.Conv2d) else head[-1]

    for task in probe.heads.heads:
        last(task).weight.zero_()
        last(task).bias.zero_()
    last("normal").bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
    valid = train.depth > 0
    if valid.any():
        last("depth").bias.fill_(float(np.log(train.depth[valid]).mean()))


def _train_heads(
    probe: DenseProbe,
    train: DenseViews,
    train_raw: torch.Tensor,
    pos_weight: float,
    config: DenseProbeConfig,
    device,
    progress: str | None,
) -> list[float]:
    """Adam with cosine decay on seeded mini-batches; returns the total loss per step."""
    optimizer = torch.optim.Adam(probe.heads.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / max(config.steps, 1)))
    )
    generator = torch.Generator().manual_seed(config.seed)
    probe.heads.train()
    history = []
    for _ in console_progress(range(config.steps), progress, unit="step"):
        idx = torch.randint(len(train), (min(config.batch_size, len(train)),), generator=generator).numpy()
        outputs = probe.head_outputs(train_raw[idx].to(device))
        losses = dense_probe_losses(outputs, *_targets(train, idx, device), contour_pos_weight=pos_weight)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        history.append(float(loss.detach()))
    return history


def _score(
    probe: DenseProbe,
    test: DenseViews,
    test_raw: torch.Tensor,
    num_categories: int,
    config: DenseProbeConfig,
    history: list[float],
) -> DenseProbeResult:
    """Metrics of the trained probe on the probe-test views."""
    device = probe.feat_mean.device
    metrics = {
        "depth": DepthMetrics(),
        "normal": NormalMetrics(),
        "contour": ContourMetrics(config.contour_thresholds, config.contour_tolerance),
        "segmentation": SegmentationMetrics(num_categories),
    }
    for s in range(0, len(test), config.batch_size):
        idx = np.arange(s, min(s + config.batch_size, len(test)))
        pred = probe.predict(test.rgb[idx], device, raw=test_raw[idx])
        depth, normal, contour, category = (t.cpu() for t in _targets(test, idx, "cpu"))
        metrics["depth"].update(pred["depth"], depth)
        metrics["normal"].update(pred["normal"], normal)
        metrics["contour"].update(pred["contour"], contour)
        metrics["segmentation"].update(pred["segmentation"], category)
    return DenseProbeResult({t: m.compute() for t, m in metrics.items()}, probe, test_raw, history)
