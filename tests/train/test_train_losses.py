"""Loss functions: reference values and the invariances they promise."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from synthssl.train.losses.adversarial import discriminator_accuracy, discriminator_loss, encoder_adversarial_loss
from synthssl.train.losses.contour import contour_loss
from synthssl.train.losses.decorrelation import decorrelation_loss
from synthssl.train.losses.depth import depth_loss
from synthssl.train.losses.normal import normal_loss
from synthssl.train.losses.nt_xent import nt_xent
from synthssl.train.methods.base import StepInfo
from synthssl.train.models.grad_reverse import grad_reverse


def _nt_xent_reference(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    losses = []
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        sims = torch.stack([z[i] @ z[j] / t for j in range(2 * n) if j != i])
        others = [j for j in range(2 * n) if j != i]
        losses.append(-(sims[others.index(pos)] - torch.logsumexp(sims, 0)))
    return torch.stack(losses).mean()


def test_nt_xent_matches_reference_and_uses_2n_minus_2_negatives():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    torch.testing.assert_close(nt_xent(z1, z2, 0.2), _nt_xent_reference(z1, z2, 0.2))
    # Identical views, orthogonal pairs: the positive has logit 1/T, the 2N-2 negatives 0.
    e = torch.eye(4)
    expect = -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 6))
    assert abs(float(nt_xent(e, e, 0.5)) - expect) < 1e-5


def test_depth_loss_scale_term():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 8, 8, generator=g) * 3 + 1
    valid = torch.ones_like(gt, dtype=torch.bool)
    assert float(depth_loss(gt.log(), gt, valid)) < 1e-10
    # a global scale error costs mean(r)^2 (1 - w): half of plain L2 at w = 0.5, nothing at w = 1
    shifted = gt.log() + 0.3
    assert abs(float(depth_loss(shifted, gt, valid, 0.0)) - 0.09) < 1e-5
    assert abs(float(depth_loss(shifted, gt, valid, 0.5)) - 0.045) < 1e-5
    assert float(depth_loss(shifted, gt, valid, 1.0)) < 1e-6
    # linear space: residual in metres
    assert abs(float(depth_loss(gt + 0.5, gt, valid, 0.0, log_space=False)) - 0.25) < 1e-5
    # invalid pixels (and zero depth) are ignored whatever they hold
    bad = gt.log().clone()
    valid2 = valid.clone()
    valid2[:, :2] = False
    bad[:, :2] = 100.0
    assert float(depth_loss(bad, gt, valid2)) < 1e-10
    gt0 = gt.clone()
    gt0[:, 3] = 0.0
    assert torch.isfinite(depth_loss(gt.log(), gt0, valid))


def test_normal_loss_is_one_minus_cosine_on_valid_pixels():
    n = F.normalize(torch.randn(2, 3, 4, 4), dim=1)
    valid = torch.ones(2, 4, 4, dtype=torch.bool)
    assert float(normal_loss(n, n, valid)) < 1e-6
    assert abs(float(normal_loss(-n, n, valid)) - 2.0) < 1e-5
    valid[0] = False
    mixed = n.clone()
    mixed[0] = -n[0]
    assert float(normal_loss(mixed, n, valid)) < 1e-6


def test_contour_loss_balances_rare_edges():
    target = torch.zeros(1, 10, 10)
    target[0, 4, :] = 1.0  # 10 edge pixels of 100
    valid = torch.ones_like(target, dtype=torch.bool)
    # logit 0 everywhere: BCE = log 2 per pixel; positives weighted (100-10)/10 = 9
    got = float(contour_loss(torch.zeros_like(target), target, valid))
    assert abs(got - math.log(2) * (90 + 10 * 9) / 100) < 1e-5
    # balanced: predicting "no edge" everywhere is not cheap
    confident_no = torch.full_like(target, -5.0)
    assert float(contour_loss(confident_no, target, valid)) > 0.4
    # pixels outside valid do not count
    valid[0, :2] = False
    logits = torch.where(target > 0, 5.0, -5.0)
    garbage = logits.clone()
    garbage[0, :2] = 5.0
    assert float(contour_loss(garbage, target, valid)) == float(contour_loss(logits, target, valid)) < 0.02


def test_adversarial_losses_and_accuracy():
    fake = torch.full((4, 1, 2, 2), -3.0)
    real = torch.full((4, 1, 2, 2), 3.0)
    assert float(discriminator_loss(fake, real)) < 0.05
    assert float(discriminator_accuracy(fake, real)) == 1.0
    assert float(encoder_adversarial_loss(fake)) > 2.9
    assert float(encoder_adversarial_loss(real)) < 0.05


def test_gradient_reversal_and_dann_ramp():
    x = torch.randn(3, requires_grad=True)
    grad_reverse(x, 0.25).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), -0.25))
    assert StepInfo(0, 100).ramp() == 0.0
    assert abs(StepInfo(50, 100).ramp() - (2 / (1 + math.exp(-5)) - 1)) < 1e-12
    assert StepInfo(100, 100).ramp() > 0.9999


def test_decorrelation_loss_is_zero_for_uncorrelated_one_for_copies_and_scale_free():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(64, 64, generator=g))
    centred = q[:, :8] - q[:, :8].mean(0)  # not exactly orthogonal after centring: re-orthogonalise
    ortho, _ = torch.linalg.qr(torch.cat([torch.ones(64, 1), centred], 1))
    uncorrelated = ortho[:, 1:]  # [64, 8], zero-mean, pairwise orthogonal columns
    assert float(decorrelation_loss(uncorrelated)) < 1e-8
    copies = torch.randn(64, 1, generator=g) * torch.tensor([[1.0, -2.0, 0.5, 3.0]]) + torch.arange(4.0)
    assert abs(float(decorrelation_loss(copies)) - 1.0) < 1e-4  # anti-correlated copies count too
    x = torch.randn(32, 6, generator=g) + torch.randn(32, 1, generator=g)
    scaled = x * torch.tensor([0.1, 1.0, 5.0, 2.0, 0.3, 7.0]) + 4.0
    torch.testing.assert_close(decorrelation_loss(x), decorrelation_loss(scaled), rtol=1e-4, atol=1e-6)
    # A dead channel (constant over the batch) counts as uncorrelated and gives no NaN.
    dead = torch.cat([copies[:, :2], torch.zeros(64, 1)], 1)
    assert abs(float(decorrelation_loss(dead)) - 2 / 6) < 1e-4
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        decorrelation_loss(torch.randn(1, 4))


def test_decorrelation_loss_gradient_spreads_collapsed_features():
    """Descending the loss turns near rank-1 features into ones with many directions."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(48, 1, generator=g) @ torch.randn(1, 16, generator=g)
    h = (base + 0.05 * torch.randn(48, 16, generator=g)).requires_grad_(True)
    start, start_ratio = float(decorrelation_loss(h.detach())), _second_to_first_direction(h.detach())
    opt = torch.optim.SGD([h], lr=5.0)
    for _ in range(100):
        opt.zero_grad()
        decorrelation_loss(h).backward()
        opt.step()
    assert start > 0.9 and float(decorrelation_loss(h.detach())) < 0.25 * start
    assert start_ratio < 0.1 and _second_to_first_direction(h.detach()) > 0.3  # no longer one dominant direction


def _second_to_first_direction(h):
    z = h - h.mean(0)
    spectrum = torch.linalg.svdvals(z / z.norm(dim=0))  # of the standardised channels
    return float(spectrum[1] / spectrum[0])
