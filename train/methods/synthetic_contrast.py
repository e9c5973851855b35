"""She & Xu (2021) with our defaults: contrast + physical properties + domain adaptation.

L = contrast_weight * L_contrast
  + property_weight * (depth_weight * L_depth + normal_weight * L_normal + contour_weight * L_contour)
  + adversarial_weight * L_adv

- L_contrast: NT-Xent between the two rendered views of each scene (pooled c5 ->
  2-layer projection MLP -> 128-d), temperature 0.1, negatives gathered across ranks.
- L_depth / L_normal / L_contour: `PropertyDecoder` on [c2..c5] of the synthetic
  views, compared at full resolution with the augmented maps, masked to
  ``batch.valid`` (losses in `synthssl.train.losses.{depth,normal,contour}`); the
  depth head predicts log-depth (log metres) by default (``depth_log_space``).
- L_adv on the ``adversarial_feature`` map (default c4) of synthetic views vs
  ``batch.real`` photos (one backbone pass over both):
  ``gan``: the discriminator has its own optimiser (`ExtraOptimizer`, loss key
  ``disc_loss``) and learns on detached features; the encoder term
  ``adv`` = BCE(D(synthetic), real) is in ``loss`` (the trainer does not let it
  update D). ``dann``: D sees features through a gradient-reversal layer with
  coefficient 2/(1+exp(-gamma p))-1 (p = progress); ``adv`` = D's loss, one optimiser.
  ``none``: off.
Any objective with weight 0 is skipped entirely (ablations).

Logged terms: contrast, depth, normal, contour, adv, disc_loss, disc_acc, grl_coeff.
Defaults are ours (see docs/train.md), not numbers from the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from synthssl.train.data.batch import ViewBatch
from synthssl.train.losses.nt_xent import nt_xent
from synthssl.train.methods.synthetic_terms import SyntheticTerms, SyntheticTermsConfig
from synthssl.train.methods.base import DataNeeds, ExtraOptimizer, Method, MethodContext, StepInfo
from synthssl.train.models.backbone import pooled
from synthssl.train.models.encoder import build_encoder
from synthssl.train.models.projection import ProjectionMLP

@dataclass
class SyntheticContrastConfig(SyntheticTermsConfig):
    """Options of ``method.name: synthetic_contrast`` (all defaults are ours); the property and
    adversarial options come from `SyntheticTermsConfig`."""

    temperature: float = 0.1  # measured: docs/quality.md
    proj_hidden_dim: int = 512
    proj_dim: int = 128
    proj_layers: int = 2
    contrast_weight: float = 1.0


class SyntheticContrast(Method):
    """She & Xu (2021): contrast + property maps + adversarial adaptation (see module docstring)."""
    Config = SyntheticContrastConfig

    def __init__(self, cfg: SyntheticContrastConfig, ctx: MethodContext):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(ctx.arch, ctx.small_stem)
        self.use_contrast = cfg.contrast_weight > 0
        channels = self.encoder.channels
        self.synthetic = SyntheticTerms(cfg, channels, method="synthetic_contrast")
        if not (self.use_contrast or self.synthetic.use_properties or self.synthetic.use_adversarial):
            raise ValueError("method: every objective is off; set method.contrast_weight, "
                             "method.property_weight or method.adversarial_weight > 0")
        self.projector = ProjectionMLP(channels[-1], cfg.proj_hidden_dim, cfg.proj_dim, cfg.proj_layers) if self.use_contrast else None

    def data_needs(self) -> DataNeeds:
        props = self.synthetic.use_properties
        return DataNeeds(geometry=props, real=self.synthetic.use_adversarial,
                         fields=("depth", "normal", "contour") if props else ())

    def extra_optimizers(self) -> list[ExtraOptimizer]:
        return self.synthetic.extra_optimizers()

    def forward(self, batch: ViewBatch, step: StepInfo) -> dict[str, Tensor]:
        cfg = self.cfg
        b, v, _, h, w = batch.rgb.shape
        x = self.synthetic.append_real(batch.rgb.flatten(0, 1), batch)  # [B*V (+ real),3,H,W], sample-major
        feats = self.encoder(x)
        n_syn = b * v
        out: dict[str, Tensor] = {}
        total = x.new_zeros((), dtype=torch.float32)
        if self.use_contrast:
            z = self.projector(pooled(feats[-1][:n_syn])).view(b, v, -1)
            out["contrast"] = nt_xent(z[:, 0], z[:, 1], cfg.temperature)
            total = total + cfg.contrast_weight * out["contrast"]
        terms, synthetic_total = self.synthetic(feats, batch, n_syn, (h, w), step)
        out.update(terms)
        total = total + synthetic_total
        out["loss"] = total
        return out
