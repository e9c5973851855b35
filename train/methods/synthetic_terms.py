"""The synthetic-data terms of She & Xu (2021), shared by every method that uses them.

``property_terms``: depth / normal / contour prediction from the decoder on the
synthetic views, masked to valid pixels. ``adversarial_terms``: feature-level domain
adaptation of synthetic features (first ``n_syn`` rows) against real photos (the
rest), as alternating GAN updates or through a gradient-reversal layer (DANN).
`synthetic_contrast` and `dsc` both compose these; where each loss is computed is in
`synthssl.train.losses.{depth,normal,contour,adversarial}`.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from synthssl.train.data.batch import ViewBatch
from synthssl.train.losses.adversarial import (discriminator_accuracy, discriminator_loss,
                                               encoder_adversarial_loss)
from synthssl.train.losses.contour import contour_loss
from synthssl.train.losses.depth import depth_loss
from synthssl.train.losses.normal import normal_loss
from synthssl.train.methods.base import StepInfo
from synthssl.train.models.grad_reverse import grad_reverse


def property_terms(decoder: nn.Module, feats: list[Tensor], batch: ViewBatch, n_syn: int,
                   size: tuple[int, int], *, depth_scale_weight: float = 0.5,
                   depth_log_space: bool = True, method: str = "method") -> dict[str, Tensor]:
    """Depth, normal and contour losses of the decoder's predictions for the synthetic views.

    feats: backbone levels [c2..c5], each [n_syn (+ real), C, h, w]; only the first
    ``n_syn`` rows (= B * V, sample-major) are decoded. size: (H, W) of the targets.
    Returns {"depth", "normal", "contour"} scalar losses (unweighted).
    """
    if not batch.has_geometry:
        raise ValueError(f"{method}: property heads need rendered data (depth, normals, contours); "
                         "set method.property_weight=0 for photo pairs")
    pred = decoder([f[:n_syn] for f in feats], size=size)
    valid = batch.valid.flatten(0, 1)
    return {
        "depth": depth_loss(pred["depth"][:, 0], batch.depth.flatten(0, 1), valid,
                            depth_scale_weight, depth_log_space),
        "normal": normal_loss(pred["normal"], batch.normal.flatten(0, 1), valid),
        "contour": contour_loss(pred["contour"][:, 0], batch.contour.flatten(0, 1), valid),
    }


def adversarial_terms(discriminator: nn.Module, f: Tensor, n_syn: int, mode: Literal["gan", "dann"],
                      step: StepInfo, dann_gamma: float = 10.0) -> dict[str, Tensor]:
    """Feature-level adaptation terms on a feature map f [n_syn + n_real, C, h, w].

    ``gan``: ``disc_loss`` trains D on detached features (its own optimiser), ``adv``
    is the encoder's term making synthetic features look real (the trainer keeps it
    from updating D). ``dann``: ``adv`` is D's loss behind a gradient-reversal layer
    with coefficient 2/(1+exp(-gamma p))-1. Also returns ``disc_acc`` (and ``grl_coeff``).
    """
    out: dict[str, Tensor] = {}
    if mode == "gan":
        d_all = discriminator(f.detach())
        out["disc_loss"] = discriminator_loss(d_all[:n_syn], d_all[n_syn:])
        out["disc_acc"] = discriminator_accuracy(d_all[:n_syn], d_all[n_syn:])
        # Same batch composition as D's own step (BatchNorm statistics over both
        # domains); only the synthetic logits enter the encoder term.
        d_enc = discriminator(torch.cat([f[:n_syn], f[n_syn:].detach()], 0))
        out["adv"] = encoder_adversarial_loss(d_enc[:n_syn])
    elif mode == "dann":
        coeff = step.ramp(dann_gamma)
        d_all = discriminator(grad_reverse(f, coeff))
        out["adv"] = discriminator_loss(d_all[:n_syn], d_all[n_syn:])
        out["disc_loss"] = out["adv"].detach()
        out["disc_acc"] = discriminator_accuracy(d_all[:n_syn], d_all[n_syn:])
        out["grl_coeff"] = f.new_tensor(coeff, dtype=torch.float32)
    else:
        raise ValueError(f"method.adversarial: expected 'gan' or 'dann', got {mode!r}")
    return out
