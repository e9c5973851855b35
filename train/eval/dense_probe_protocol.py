"""The dense benchmark's probe protocol: a learning-rate check, a converged fit, and the probe's own noise.

For one frozen backbone whose features are cached (`linear_dense_probe`):

1. **Learning-rate check.** Whole scenes (``groups``: one id per view, so the views of a scene stay
   together) are drawn into a probe-validation split (``val_fraction`` of the groups, seeded); the
   heads are trained on the rest once per entry of the grid (fit k trains each task at the k-th rate
   of its grid: ``depth_lrs`` for depth, ``lrs`` for the other tasks) and scored on the validation
   split. Each task keeps the rate with its best validation score (`SELECTION`: mIoU over the present
   categories, AbsRel, mean angle, ODS-F; a tie keeps the smaller rate). A chosen rate at either end
   of its grid is flagged (``at_edge``): the grid may not bracket the best one.
2. **Fit.** The heads are trained on all probe-train views with the chosen rates (standardisation
   fitted on them) and scored on the probe-test views. The loss over all probe-train views is
   recorded at ``curve_at`` (fractions of the steps); `convergence` reads it as the start, the end
   and the relative change over the last tenth of the steps.
3. **Noise.** `noise_seeds` refits with other seeds (the mini-batch order, the probe's only
   randomness) and the same rates give the probe's own spread on one backbone (`probe_noise`: sample
   standard deviation over probe seeds), to be read next to the spread over pretraining seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from synthssl.train.eval.linear_dense_probe import FittedProbe, Standardiser, Targets, fit_probe, score_probe, subset

__all__ = [
    "SELECTION",
    "ProbeProtocol",
    "LRCheck",
    "ProtocolResult",
    "validation_split",
    "check_learning_rates",
    "convergence",
    "run_protocol",
    "probe_noise",
]

#: task -> (metric that picks its learning rate, higher is better)
SELECTION: dict[str, tuple[str, bool]] = {
    "segmentation": ("miou_present", True),
    "depth": ("abs_rel", False),
    "normal": ("mean_angle", False),
    "contour": ("ods_f", True),
}


@dataclass(frozen=True)
class ProbeProtocol:
    """Settings of the protocol (the module docstring says how each is used)."""

    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    depth_lrs: Optional[tuple[float, ...]] = None  # the depth task's grid (None: lrs), as long as lrs
    steps: int = 400
    batch_size: int = 16
    val_fraction: float = 0.25
    seed: int = 0
    curve_at: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
    contour_thresholds: int = 99
    contour_tolerance: int = 1

    def __post_init__(self) -> None:
        for grid in (self.lrs, self.grid("depth")):
            if not grid or min(grid) <= 0:
                raise ValueError(f"probe learning rates must be a non-empty list of values > 0, got {list(grid)}")
        if len(self.grid("depth")) != len(self.lrs):
            raise ValueError(f"probe depth_lrs {list(self.grid('depth'))} and lrs {list(self.lrs)} differ in length")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"probe val_fraction must lie in (0, 1), got {self.val_fraction}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"probe steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")

    def grid(self, task: str) -> tuple[float, ...]:
        """The learning rates the check tries for ``task``."""
        return self.depth_lrs if task == "depth" and self.depth_lrs else self.lrs


@dataclass(frozen=True)
class LRCheck:
    """One task's learning-rate check: validation score per rate, the chosen rate, whether it is a grid end."""

    metric: str
    scores: dict[float, float]
    chosen: float
    at_edge: bool

    def as_dict(self) -> dict:
        return {
            "metric": self.metric,
            "scores": {f"{lr:g}": s for lr, s in self.scores.items()},
            "chosen": self.chosen,
            "at_edge": self.at_edge,
        }


@dataclass
class ProtocolResult:
    """metrics: task -> probe-test metrics of the fit with ``protocol.seed``; lr_checks: task -> LRCheck;
    convergence: task -> `convergence` of that fit; probe: the fit; repeats: probe-test metrics of each
    noise seed (the main fit's first), empty without noise seeds."""

    metrics: dict[str, dict[str, float]]
    lr_checks: dict[str, LRCheck]
    convergence: dict[str, dict[str, float]]
    probe: FittedProbe
    repeats: list[dict[str, dict[str, float]]] = field(default_factory=list)


def validation_split(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices) of views with group ids ``groups`` [N]: ``round(fraction x
    groups)`` whole groups (at least 1, at most all but 1) drawn by ``np.random.default_rng(seed)``."""
    unique = np.unique(groups)
    if unique.size < 2:
        raise ValueError(f"dense probes: the learning-rate check needs at least 2 scenes, got {unique.size}")
    n_val = int(min(max(round(fraction * unique.size), 1), unique.size - 1))
    val_groups = np.random.default_rng(seed).permutation(unique)[:n_val]
    is_val = np.isin(groups, val_groups)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _score_kwargs(protocol: ProbeProtocol, num_categories: int, device) -> dict:
    return {
        "num_categories": num_categories,
        "contour_thresholds": protocol.contour_thresholds,
        "contour_tolerance": protocol.contour_tolerance,
        "device": device,
    }


def _best(scores: dict[float, float], higher: bool) -> float:
    """The rate with the best score; on a tie the smaller rate; a NaN score never wins."""
    finite = [lr for lr, s in scores.items() if np.isfinite(s)]
    if not finite:
        return min(scores)
    return min(finite, key=lambda lr: (-scores[lr] if higher else scores[lr], lr))


def check_learning_rates(
    raw: torch.Tensor,
    targets: Targets,
    groups: np.ndarray,
    protocol: ProbeProtocol,
    *,
    num_categories: int = 1,
    device="cpu",
) -> dict[str, LRCheck]:
    """Step 1 of the protocol for every task of ``targets``: task -> `LRCheck`."""
    fit_idx, val_idx = validation_split(np.asarray(groups), protocol.val_fraction, protocol.seed)
    fit_raw, val_raw = raw[torch.as_tensor(fit_idx)], raw[torch.as_tensor(val_idx)]
    fit_targets, val_targets = subset(targets, fit_idx), subset(targets, val_idx)
    standardiser = Standardiser.fit(fit_raw)
    scores: dict[str, dict[float, float]] = {t: {} for t in targets}
    for k in range(len(protocol.lrs)):
        probe = fit_probe(
            fit_raw,
            fit_targets,
            {t: protocol.grid(t)[k] for t in targets},
            steps=protocol.steps,
            batch_size=protocol.batch_size,
            seed=protocol.seed,
            num_categories=num_categories,
            standardiser=standardiser,
            device=device,
        )
        result = score_probe(probe, val_raw, val_targets, **_score_kwargs(protocol, num_categories, device))
        for t in targets:
            scores[t][protocol.grid(t)[k]] = result[t][SELECTION[t][0]]
    checks = {}
    for t, per_lr in scores.items():
        metric, higher = SELECTION[t]
        chosen = _best(per_lr, higher)
        grid = sorted(protocol.grid(t))
        checks[t] = LRCheck(metric, per_lr, chosen, len(grid) > 1 and chosen in (grid[0], grid[-1]))
    return checks


def convergence(curve: Sequence[tuple[int, float]]) -> dict[str, float]:
    """{"start", "end", "last_tenth_change"} of a loss curve [(step, loss)] whose last point is the final
    step: the loss before training, at the end, and |L(end) - L(90 %)| / L(90 %) with L(90 %) the
    recorded point nearest to 90 % of the steps (NaN when the curve has fewer than 2 points)."""
    if not curve:
        return {"start": float("nan"), "end": float("nan"), "last_tenth_change": float("nan")}
    steps, losses = zip(*curve)
    start, end = float(losses[0]), float(losses[-1])
    if len(curve) < 2:
        return {"start": start, "end": end, "last_tenth_change": float("nan")}
    target = 0.9 * steps[-1]
    k = min(range(len(steps) - 1), key=lambda i: abs(steps[i] - target))
    before = float(losses[k])
    change = abs(end - before) / abs(before) if before != 0 else float("nan")
    return {"start": start, "end": end, "last_tenth_change": change}


def run_protocol(
    train_raw: torch.Tensor,
    train_targets: Targets,
    groups: np.ndarray,
    test_raw: torch.Tensor,
    test_targets: Targets,
    protocol: ProbeProtocol,
    *,
    num_categories: int = 1,
    noise_seeds: Sequence[int] = (),
    lr_checks: Optional[dict[str, LRCheck]] = None,
    device="cpu",
) -> ProtocolResult:
    """Steps 1-3 of the protocol (step 1 skipped when ``lr_checks`` are given). ``noise_seeds``: further
    probe seeds to refit with (step 3); their scores come after the main fit's in ``repeats``."""
    checks = lr_checks or check_learning_rates(
        train_raw, train_targets, groups, protocol, num_categories=num_categories, device=device
    )
    lrs = {t: checks[t].chosen for t in train_targets}
    standardiser = Standardiser.fit(train_raw)
    kwargs = _score_kwargs(protocol, num_categories, device)

    def fit(seed: int, curve_at: Sequence[float]) -> FittedProbe:
        return fit_probe(
            train_raw,
            train_targets,
            lrs,
            steps=protocol.steps,
            batch_size=protocol.batch_size,
            seed=seed,
            num_categories=num_categories,
            standardiser=standardiser,
            curve_at=curve_at,
            device=device,
        )

    probe = fit(protocol.seed, protocol.curve_at)
    metrics = score_probe(probe, test_raw, test_targets, **kwargs)
    repeats = (
        [metrics] + [score_probe(fit(s, ()), test_raw, test_targets, **kwargs) for s in noise_seeds]
        if noise_seeds
        else []
    )
    return ProtocolResult(
        metrics=metrics,
        lr_checks=checks,
        convergence={t: convergence(c) for t, c in probe.curve.items()},
        probe=probe,
        repeats=repeats,
    )


def probe_noise(values: Sequence[float]) -> dict:
    """{"values", "mean", "std"} of one metric over probe seeds; std is the sample standard deviation
    (ddof 1), None for fewer than 2 values."""
    arr = np.asarray(values, dtype=np.float64)
    return {
        "values": [float(v) for v in arr],
        "mean": float(arr.mean()) if arr.size else float("nan"),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
    }
