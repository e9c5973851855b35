"""Linear dense probes on cached frozen features: one 1x1 convolution per task, trained and scored.

The building block of the dense benchmark's probe protocol (`dense_probe_protocol`):

- features: raw float16 [N, h, w, C] (channels last) of a frozen backbone (`frozen_dense_features`:
  the `DenseFeatures` levels on one grid of stride ``feature_stride``, computed once), standardised
  per channel with probe-train statistics (`Standardiser`, from
  `synthssl.train.eval.dense_probe.channel_statistics`: a fixed affine map, so a head on top is
  still linear in the features);
- heads: one 1x1 convolution per task, i.e. one linear map per location (``nn.Linear(C, out)``:
  depth 1 = log metres, normal 3, contour 1 = logit, segmentation K = class logits), starting as the
  constant predictors of `dense_probe` (zero weights and biases; depth bias = mean log depth of the
  training targets; normals facing the camera). They run as one matrix product of their
  concatenated weights with the standardisation folded in (``W / std`` and ``b - W mean / std``):
  the same function, a fraction of the cost on a CPU;
- the logits are upsampled bilinearly (``align_corners=False``) to the targets' resolution and
  trained with `synthssl.train.eval.dense_heads.task_loss`; the upsampling is two matrix
  products (`Upsampler`), equal to ``F.interpolate(..., mode="bilinear")`` and a fraction of its
  cost on a CPU;
- Adam with one learning rate per task, cosine decay to 0 over ``steps``; each step draws
  ``batch_size`` views with replacement from a ``torch.Generator`` seeded with ``seed`` (all views
  when ``batch_size`` >= N). That draw is the only randomness: whatever the seed, the heads start
  from the same constant predictor. The heads of different tasks share no parameter, so training
  them together is training each alone on the same mini-batches;
- scores (`score_probe`): `dense_metrics` pooled over every pixel of the scored views at the
  targets' resolution; segmentation adds ``miou_present``, the mIoU over the categories present in
  the scored ground truth (`present_miou`).

Targets (`Targets`) are a dict task -> tensor: depth float [N, H, W] (metres or any unit, 0 = no
ground truth), normal float [N, 3, H, W] (unit, camera frame, 0 = none), contour uint8 [N, H, W]
{0, 1}, segmentation int64 [N, H, W]; any subset of the four tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthssl.train.eval.dense_data import DenseViews
from synthssl.train.eval.dense_features import DenseFeatures
from synthssl.train.eval.dense_heads import TASK_CHANNELS, task_loss
from synthssl.train.eval.dense_metrics import ContourMetrics, DepthMetrics, NormalMetrics, SegmentationMetrics
from synthssl.train.eval.dense_probe import channel_statistics
from synthssl.train.eval.features import preprocess_images

__all__ = [
    "TASKS",
    "Targets",
    "targets_from_views",
    "subset",
    "frozen_dense_features",
    "Standardiser",
    "Upsampler",
    "FittedProbe",
    "fit_probe",
    "probe_losses",
    "predict_tasks",
    "score_probe",
    "present_miou",
]

#: The tasks, in the order heads are built and reported.
TASKS = ("segmentation", "depth", "normal", "contour")

Targets = dict[str, torch.Tensor]

#: log depth clamp of a prediction: exp -> [1 mm, 22 km] in metres, finite on any input (as `dense_probe`)
LOG_DEPTH_RANGE = (-7.0, 10.0)


def targets_from_views(views: DenseViews) -> Targets:
    """All four tasks' targets of rendered views (CPU tensors sharing the views' memory where possible)."""
    return {
        "segmentation": torch.from_numpy(views.category),
        "depth": torch.from_numpy(views.depth),
        "normal": torch.from_numpy(views.normal).permute(0, 3, 1, 2),
        "contour": torch.from_numpy(views.contour),
    }


def subset(targets: Targets, index: np.ndarray | torch.Tensor) -> Targets:
    """The targets of the views ``index`` (int array)."""
    idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
    return {t: v[idx] for t, v in targets.items()}


@torch.no_grad()
def frozen_dense_features(
    encoder: nn.Module,
    images: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    levels: Sequence[str] = ("c3", "c4", "c5"),
    feature_stride: int = 8,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
) -> torch.Tensor:
    """float16 [N, H / stride, W / stride, C] (channels last, CPU) features of uint8 RGB [N, H, W, 3] at
    their own size, the encoder in eval mode (BatchNorm statistics frozen); the encoder is shared, not copied."""
    features = DenseFeatures(encoder, levels, feature_stride).to(device).eval()
    out = []
    for s in range(0, images.shape[0], batch_size):
        x = preprocess_images(images[s : s + batch_size], None, mean, std).to(device)
        out.append(features(x).permute(0, 2, 3, 1).half().cpu())
    return torch.cat(out)


@dataclass(frozen=True)
class Standardiser:
    """The fixed per-channel affine map of the probe features, (raw - mean) / std; mean, std float [C]."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, raw: torch.Tensor) -> "Standardiser":
        """From probe-train features [N, h, w, C] (`channel_statistics`: std floored at 10 % of the mean std)."""
        mean, std = channel_statistics(raw.permute(0, 3, 1, 2))
        return cls(mean.flatten(), std.flatten())


class Upsampler:
    """Bilinear resampling (align_corners False) of [N, K, h, w] maps to (H, W) as ``Uh @ x @ Uw``:
    the 1-D interpolation matrices of each axis, the response of ``F.interpolate`` to unit impulses."""

    def __init__(self, source: tuple[int, int], size: tuple[int, int], device: torch.device | str = "cpu"):
        self.size = tuple(size)
        self.rows = self._matrix(source[0], size[0]).t().contiguous().to(device)  # [H, h]
        self.cols = self._matrix(source[1], size[1]).to(device)  # [w, W]

    @staticmethod
    def _matrix(n: int, size: int) -> torch.Tensor:
        """float [n, size]: row i = the linear interpolation of a unit impulse at i."""
        return F.interpolate(torch.eye(n).unsqueeze(0), size=size, mode="linear", align_corners=False)[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows @ x @ self.cols


def _build_heads(tasks: Sequence[str], channels: int, num_categories: int) -> nn.ModuleDict:
    outs = {**TASK_CHANNELS, "segmentation": num_categories}
    unknown = [t for t in tasks if t not in outs]
    if unknown or not tasks:
        raise ValueError(f"dense probes: tasks must be a non-empty subset of {TASKS}, got {list(tasks)}")
    return nn.ModuleDict({t: nn.Linear(channels, outs[t]) for t in TASKS if t in tasks})


@torch.no_grad()
def _constant_start(heads: nn.ModuleDict, targets: Targets) -> None:
    """Constant predictors (as `dense_probe`): zero weights and biases, depth at the mean log depth of the
    valid targets, normals facing the camera (never a zero vector)."""
    for head in heads.values():
        head.weight.zero_()
        head.bias.zero_()
    if "normal" in heads:
        heads["normal"].bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
    if "depth" in heads:
        d = targets["depth"]
        valid = d > 0
        if valid.any():
            heads["depth"].bias.fill_(float(torch.log(d[valid].double()).mean()))


def _contour_pos_weight(targets: Targets) -> float:
    """#negatives / #positives of the contour targets, at most 50 (1 without positives or contours)."""
    if "contour" not in targets:
        return 1.0
    positives = float(targets["contour"].float().mean())
    return float(min(50.0, (1 - positives) / positives)) if positives > 0 else 1.0


@dataclass
class FittedProbe:
    """Trained heads and what they need to predict.

    curve: task -> [(step, loss over all training views)] at the fractions of ``steps`` asked for."""

    heads: nn.ModuleDict
    standardiser: Standardiser
    contour_pos_weight: float
    curve: dict[str, list[tuple[int, float]]]


def _logits(probe: FittedProbe, raw: torch.Tensor, up: Upsampler, device) -> dict[str, torch.Tensor]:
    """task -> logits [N, out, H, W] upsampled from raw features [N, h, w, C]: all heads as one matrix
    product with the standardisation folded in, split after the upsampling."""
    heads = list(probe.heads.values())
    st = probe.standardiser
    mean, std = st.mean.to(device), st.std.to(device)
    weight = torch.cat([h.weight for h in heads]) / std  # [K, C]
    bias = torch.cat([h.bias for h in heads]) - weight @ mean
    logits = F.linear(raw.to(device).float(), weight, bias).permute(0, 3, 1, 2)  # [N, K, h, w]
    return dict(zip(probe.heads, up(logits).split([h.out_features for h in heads], dim=1)))


def _target_size(targets: Targets) -> tuple[int, int]:
    any_target = next(iter(targets.values()))
    return tuple(any_target.shape[-2:])


@torch.no_grad()
def probe_losses(
    probe: FittedProbe, raw: torch.Tensor, targets: Targets, device="cpu", batch_size: int = 64
) -> dict[str, float]:
    """task -> the training loss over all views ``raw`` (batch means weighted by batch size)."""
    up = Upsampler(tuple(raw.shape[1:3]), _target_size(targets), device)
    sums = {t: 0.0 for t in probe.heads}
    for s in range(0, raw.shape[0], batch_size):
        idx = torch.arange(s, min(s + batch_size, raw.shape[0]))
        logits = _logits(probe, raw[idx], up, device)
        for t in probe.heads:
            loss = task_loss(t, logits[t], targets[t][idx].to(device), probe.contour_pos_weight)
            sums[t] += float(loss) * len(idx)
    return {t: v / raw.shape[0] for t, v in sums.items()}


def fit_probe(
    raw: torch.Tensor,
    targets: Targets,
    lrs: Mapping[str, float],
    *,
    steps: int,
    batch_size: int,
    seed: int,
    num_categories: int = 1,
    standardiser: Optional[Standardiser] = None,
    curve_at: Sequence[float] = (),
    device: torch.device | str = "cpu",
) -> FittedProbe:
    """Train one linear head per task of ``lrs`` (task -> Adam learning rate) on raw features
    [N, h, w, C] and full-resolution ``targets``; ``curve_at``: fractions of ``steps`` (0 = before the
    first step) at which the loss over all N views is recorded. ``standardiser`` defaults to one fitted on
    ``raw``. On a CPU the heads train single-threaded (their kernels are tiny: several times faster)."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"dense probes: steps and batch_size must be >= 1, got {steps}, {batch_size}")
    missing = [t for t in lrs if t not in targets]
    if missing:
        raise ValueError(f"dense probes: no targets for task(s) {missing}")
    standardiser = standardiser or Standardiser.fit(raw)
    heads = _build_heads(list(lrs), raw.shape[-1], num_categories).to(device)
    _constant_start(heads, targets)
    probe = FittedProbe(heads, standardiser, _contour_pos_weight(targets), {t: [] for t in heads})
    optimizer = torch.optim.Adam([{"params": heads[t].parameters(), "lr": float(lrs[t])} for t in heads])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    checkpoints = {int(round(f * steps)) for f in curve_at}
    generator = torch.Generator().manual_seed(seed)
    n = raw.shape[0]
    up = Upsampler(tuple(raw.shape[1:3]), _target_size(targets), device)
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        for step in range(steps + 1):
            if step in checkpoints:
                for t, loss in probe_losses(probe, raw, targets, device).items():
                    probe.curve[t].append((step, loss))
            if step == steps:
                break
            idx = torch.arange(n) if batch_size >= n else torch.randint(n, (batch_size,), generator=generator)
            logits = _logits(probe, raw[idx], up, device)
            loss = sum(task_loss(t, logits[t], targets[t][idx].to(device), probe.contour_pos_weight) for t in heads)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    finally:
        torch.set_num_threads(threads)
    heads.eval()
    return probe


@torch.no_grad()
def predict_tasks(
    probe: FittedProbe, raw: torch.Tensor, size: tuple[int, int], device="cpu"
) -> dict[str, torch.Tensor]:
    """Predictions at ``size`` (H, W) of raw features [N, h, w, C] (CPU tensors): depth float [N, H, W]
    (exp of the clamped log-depth logit), normal float [N, 3, H, W] unit, contour float [N, H, W]
    probability, segmentation int64 [N, H, W] category id; only the probe's tasks."""
    logits = _logits(probe, raw, Upsampler(tuple(raw.shape[1:3]), size, device), device)
    out = {}
    for t, o in logits.items():
        if t == "depth":
            out[t] = o[:, 0].clamp(*LOG_DEPTH_RANGE).exp().cpu()
        elif t == "normal":
            out[t] = F.normalize(o, dim=1).cpu()
        elif t == "contour":
            out[t] = o[:, 0].sigmoid().cpu()
        else:
            out[t] = o.argmax(1).cpu()
    return out


def present_miou(metrics: SegmentationMetrics) -> float:
    """mIoU (%) over the categories present in the ground truth that ``metrics`` accumulated (a category
    only predicted, never true, is left out; a present one never predicted counts with IoU 0)."""
    present = metrics.confusion.sum(1) > 0
    if not present.any():
        return 0.0
    return 100.0 * float(metrics.per_class_iou()[present].mean())


@torch.no_grad()
def score_probe(
    probe: FittedProbe,
    raw: torch.Tensor,
    targets: Targets,
    *,
    num_categories: int = 1,
    batch_size: int = 64,
    contour_thresholds: int = 99,
    contour_tolerance: int = 1,
    device="cpu",
) -> dict[str, dict[str, float]]:
    """task -> metrics of the probe on the views ``raw`` against ``targets`` (see the module docstring)."""
    meters = {
        "segmentation": SegmentationMetrics(num_categories),
        "depth": DepthMetrics(),
        "normal": NormalMetrics(),
        "contour": ContourMetrics(contour_thresholds, contour_tolerance),
    }
    meters = {t: m for t, m in meters.items() if t in probe.heads}
    size = _target_size(targets)
    for s in range(0, raw.shape[0], batch_size):
        idx = torch.arange(s, min(s + batch_size, raw.shape[0]))
        pred = predict_tasks(probe, raw[idx], size, device)
        for t, meter in meters.items():
            meter.update(pred[t], targets[t][idx])
    scores = {t: m.compute() for t, m in meters.items()}
    if "segmentation" in meters:
        scores["segmentation"]["miou_present"] = present_miou(meters["segmentation"])
    return scores
