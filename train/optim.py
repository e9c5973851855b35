"""Optimisers (AdamW, SGD, LARS) and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from synthssl.train.config import OptimConfig


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratio (You et al. 2017).

    For every parameter: g <- (g + wd w) * tc ||w|| / ||g + wd w|| (when both norms are
    > 0), with each group's own weight decay. Biases and norm layers take the ratio too:
    with the SimCLR-style exclusion (plain SGD steps for them) their steps at lr 1.2 blew up
    the dense heads (depth loss 3e8 at step 45 of a 48 px `full` run; the same run with the
    ratio everywhere trains).
    """

    def __init__(
        self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, trust_coefficient: float = 0.001
    ):
        super().__init__(
            params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient)
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                ratio = torch.where(
                    (w_norm > 0) & (g_norm > 0), group["trust_coefficient"] * w_norm / g_norm, torch.ones_like(w_norm)
                )
                g = g * ratio
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.clone()
                else:
                    buf.mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-group["lr"])
        return loss


def parameter_groups(params: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Two groups: weights with decay; biases and norm parameters (ndim <= 1) without."""
    decay, no_decay = [], []
    for _, p in params:
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _fused_ok(groups: list[dict]) -> bool:
    """Fused AdamW (one kernel for all parameters) when every parameter is a float CPU/CUDA tensor."""
    params = [p for g in groups for p in g["params"]]
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def build_optimizer(named_params: list[tuple[str, nn.Parameter]], cfg: OptimConfig) -> torch.optim.Optimizer:
    """The main optimiser of `cfg.name` over `named_params`."""
    groups = parameter_groups(named_params, cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), fused=_fused_ok(groups))
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.name == "lars":
        return LARS(groups, lr=cfg.lr, momentum=cfg.momentum, trust_coefficient=cfg.trust_coefficient)
    raise ValueError(f"optim.name: unknown optimiser {cfg.name!r}; choose adamw, sgd or lars")


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak lr at 0-based `step`: linear warm-up to 1 over warmup_steps
    ((step+1)/warmup), then cosine from 1 down to min_ratio at the last step."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
