"""Learning-rate schedule and optimisers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from synthssl.train.config import OptimConfig
from synthssl.train.optim import LARS, build_optimizer, lr_factor


def test_warmup_then_cosine():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, min_ratio=0.1) == pytest.approx(0.1)
    values = [lr_factor(s, 100, 10) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("name", ["adamw", "sgd", "lars"])
def test_no_weight_decay_on_biases_and_norms(name):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    opt = build_optimizer(list(model.named_parameters()), OptimConfig(name=name, weight_decay=0.1))
    by_decay = {g["weight_decay"]: sum(p.numel() for p in g["params"]) for g in opt.param_groups}
    assert by_decay == {0.1: 4 * 3 * 3 * 3, 0.0: 4 + 4 + 4}


def test_lars_scales_the_step_by_the_trust_ratio():
    w = nn.Parameter(torch.full((4,), 2.0))
    opt = LARS([{"params": [w], "weight_decay": 0.0}], lr=1.0, momentum=0.0, trust_coefficient=0.01)
    w.grad = torch.full((4,), 100.0)
    opt.step()
    # ratio = 0.01 * |w| / |g| = 0.01 * 4 / 200: the update is 0.0002 * g = 0.02 per entry
    torch.testing.assert_close(w.detach(), torch.full((4,), 2.0 - 0.02))
    assert math.isclose(opt.param_groups[0]["lr"], 1.0)


def test_lars_bounds_every_step_by_the_trust_ratio_biases_and_norms_included():
    """No parameter takes a raw-lr step: with a huge gradient and lr 1.2 (the full-size
    budget's), each tensor moves by exactly tc * ||w|| (momentum 0), biases and BatchNorm
    included; the SimCLR-style exclusion made the dense heads diverge."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)  # every norm > 0, so the ratio applies everywhere
    cfg = OptimConfig(name="lars", lr=1.2, momentum=0.0, weight_decay=0.0, trust_coefficient=0.001)
    opt = build_optimizer(list(model.named_parameters()), cfg)
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e4)
    opt.step()
    for p, w in zip(model.parameters(), before):
        step = torch.linalg.vector_norm(p.detach() - w)
        assert math.isclose(step, 1.2 * 0.001 * torch.linalg.vector_norm(w), rel_tol=1e-4), p.shape
