"""The synthetic-data terms of She & Xu (2021), shared by every method that uses them.

``property_terms``: depth / normal / contour prediction from the decoder on the
synthetic views, masked to valid pixels. ``adversarial_terms``: feature-level domain
adaptation of synthetic features (first ``n_syn`` rows) against real photos (the
rest), as alternating GAN updates or through a gradient-reversal layer (DANN).
`synthetic_contrast` and `dsc` both compose these; where each loss is computed is in
`synthssl.train.losses.{depth,normal,contour,adversarial}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from synthssl.core.config import need
from synthssl.train.data.batch import ViewBatch
from synthssl.train.losses.adversarial import discriminator_accuracy, discriminator_loss, encoder_adversarial_loss
from synthssl.train.losses.contour import contour_loss
from synthssl.train.losses.depth import depth_loss
from synthssl.train.losses.normal import normal_loss
from synthssl.train.methods.base import ExtraOptimizer, StepInfo
from synthssl.train.models.backbone import LEVEL_INDEX
from synthssl.train.models.discriminator import Discriminator
from synthssl.train.models.grad_reverse import grad_reverse
from synthssl.train.models.property_decoder import PropertyDecoder


@dataclass
class SyntheticTermsConfig:
    """The She & Xu terms (``method.synthetic``): depth/normal/contour heads and feature adaptation."""

    property_weight: float = 3.0  # measured with LARS: docs/quality.md
    """weight of the property terms (depth + normal + contour); 0 = no decoder."""
    depth_weight: float = 1.0
    """weight of the depth loss inside the property terms."""
    normal_weight: float = 1.0
    """weight of the normal loss inside the property terms."""
    contour_weight: float = 1.0
    """weight of the contour loss inside the property terms."""
    depth_scale_weight: float = 0.5
    """w of the depth loss mean(r^2) - w mean(r)^2, r the residuals (log metres by default); 0 = plain L2."""
    depth_log_space: bool = True
    """the depth head predicts log metres."""
    decoder_width: int = 64
    """channels of the property decoder."""
    adversarial: Literal["none", "gan", "dann"] = "gan"
    """feature adaptation to data.photos: gan (own discriminator optimiser), dann (gradient reversal) or none."""
    adversarial_weight: float = 0.1
    """weight of the encoder's adversarial term; 0 = off."""
    adversarial_feature: Literal["c3", "c4", "c5"] = "c4"
    """backbone level the discriminator sees."""
    disc_width: int = 256
    """discriminator channels."""
    disc_blocks: int = 2
    """discriminator conv blocks."""
    disc_lr: float = 2e-4
    """discriminator AdamW learning rate (gan)."""
    dann_gamma: float = 10.0
    """DANN ramp 2 / (1 + exp(-gamma p)) - 1 of the reversal coefficient."""

    @property
    def uses_properties(self) -> bool:
        return self.property_weight > 0

    @property
    def uses_adversarial(self) -> bool:
        return self.adversarial != "none" and self.adversarial_weight > 0

    def check(self) -> None:
        for key in (
            "property_weight",
            "depth_weight",
            "normal_weight",
            "contour_weight",
            "depth_scale_weight",
            "adversarial_weight",
        ):
            need(getattr(self, key) >= 0, key, ">= 0 (0 = off)")
        for key in ("decoder_width", "disc_width", "disc_blocks"):
            need(getattr(self, key) >= 1, key, ">= 1")
        need(self.disc_lr > 0, "disc_lr", "> 0")


class SyntheticTerms(nn.Module):
    """The property decoder and the discriminator, and the weighted synthetic-data loss.

    channels: the encoder levels' channel counts (``Encoder.channels``).
    A term whose weight is 0 (or ``adversarial: none``) builds no module and costs nothing.
    """

    def __init__(self, cfg: SyntheticTermsConfig, channels: tuple[int, ...]):
        super().__init__()
        self.cfg = cfg
        self.use_properties = cfg.property_weight > 0
        self.use_adversarial = cfg.adversarial != "none" and cfg.adversarial_weight > 0
        self.decoder = (
            PropertyDecoder(channels, cfg.decoder_width, "log_metres" if cfg.depth_log_space else "metres")
            if self.use_properties
            else None
        )
        self.discriminator = (
            Discriminator(channels[LEVEL_INDEX[cfg.adversarial_feature]], cfg.disc_width, cfg.disc_blocks)
            if self.use_adversarial
            else None
        )

    def exportable_heads(self) -> dict[str, nn.Module]:
        """The property decoder as the export's ``properties`` head (none when the property terms are off)."""
        return {"properties": self.decoder} if self.decoder is not None else {}

    def extra_optimizers(self) -> list[ExtraOptimizer]:
        """The discriminator's own optimiser for alternating GAN updates (none otherwise)."""
        if self.use_adversarial and self.cfg.adversarial == "gan":
            return [
                ExtraOptimizer("discriminator", list(self.discriminator.parameters()), "disc_loss", lr=self.cfg.disc_lr)
            ]
        return []

    def append_real(self, x: Tensor, batch: ViewBatch) -> Tensor:
        """x [n_syn,3,H,W] plus the batch's real photos [Br,3,H,W], one backbone pass for both. The batch
        holds photos only when a term of the method uses them (its ``data_needs``)."""
        if batch.real is None:
            return x
        return torch.cat([x, batch.real.to(x.dtype)], 0)

    def forward(
        self, feats: list[Tensor], batch: ViewBatch, n_syn: int, size: tuple[int, int], step: StepInfo
    ) -> tuple[dict[str, Tensor], Tensor]:
        """(logged terms, weighted total) for backbone levels ``feats`` of n_syn synthetic + real images.

        total = property_weight * (w_d L_depth + w_n L_normal + w_c L_contour) + adversarial_weight * L_adv.
        """
        cfg = self.cfg
        out: dict[str, Tensor] = {}
        total = feats[-1].new_zeros((), dtype=torch.float32)
        if self.use_properties:
            out.update(
                property_terms(
                    self.decoder,
                    feats,
                    batch,
                    n_syn,
                    size,
                    depth_scale_weight=cfg.depth_scale_weight,
                    depth_log_space=cfg.depth_log_space,
                )
            )
            total = total + cfg.property_weight * (
                cfg.depth_weight * out["depth"]
                + cfg.normal_weight * out["normal"]
                + cfg.contour_weight * out["contour"]
            )
        if self.use_adversarial:
            out.update(
                adversarial_terms(
                    self.discriminator,
                    feats[LEVEL_INDEX[cfg.adversarial_feature]],
                    n_syn,
                    cfg.adversarial,
                    step,
                    cfg.dann_gamma,
                )
            )
            total = total + cfg.adversarial_weight * out["adv"]
        return out, total


def property_terms(
    decoder: nn.Module,
    feats: list[Tensor],
    batch: ViewBatch,
    n_syn: int,
    size: tuple[int, int],
    *,
    depth_scale_weight: float = 0.5,
    depth_log_space: bool = True,
) -> dict[str, Tensor]:
    """Depth, normal and contour losses of the decoder's predictions for the synthetic views.

    feats: backbone levels [c2..c5], each [n_syn (+ real), C, h, w]; only the first
    ``n_syn`` rows (= B * V, sample-major) are decoded. size: (H, W) of the targets.
    Returns {"depth", "normal", "contour"} scalar losses (unweighted).
    """
    pred = decoder([f[:n_syn] for f in feats], size=size)
    valid = batch.valid.flatten(0, 1)
    return {
        "depth": depth_loss(pred["depth"][:, 0], batch.depth.flatten(0, 1), valid, depth_scale_weight, depth_log_space),
        "normal": normal_loss(pred["normal"], batch.normal.flatten(0, 1), valid),
        "contour": contour_loss(pred["contour"][:, 0], batch.contour.flatten(0, 1), valid),
    }


def adversarial_terms(
    discriminator: nn.Module,
    f: Tensor,
    n_syn: int,
    mode: Literal["gan", "dann"],
    step: StepInfo,
    dann_gamma: float = 10.0,
) -> dict[str, Tensor]:
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
        raise ValueError(f"method.synthetic.adversarial: expected 'gan' or 'dann', got {mode!r}")
    return out
