"""She & Xu (2021) with our defaults: contrast + physical properties + domain adaptation.

L = contrast_weight * L_contrast
  + photo_contrast_weight * L_photo_contrast
  + synthetic.property_weight * (depth_weight * L_depth + normal_weight * L_normal + contour_weight * L_contour)
  + synthetic.adversarial_weight * L_adv
  + decorrelation_weight * L_decorrelation
  + photo_decorrelation_weight * L_photo_decorrelation
(keys under ``method:``; the synthetic-data weights under ``method.synthetic:``)

- L_contrast: NT-Xent between the two rendered views of each scene (pooled c5 ->
  2-layer projection MLP -> 128-d), temperature 0.1, negatives gathered across ranks.
- L_photo_contrast (ours, not in the paper; off by default): NT-Xent between two crops of
  each real photo of ``batch.real`` (``data.photos``), through the same projector, with the
  other photos as negatives: a SimCLR term on the unlabeled target domain. The real batch
  keeps its size (``data.real_batch_size`` images), so it holds half as many photos, two
  crops each, and the backbone sees as many images per step as without the term. Synthetic
  and real embeddings are never negatives of each other (that would reward telling the
  domains apart).
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
- L_decorrelation (ours, not in the paper; off by default): mean squared off-diagonal
  channel correlation of the pooled c5 features of the synthetic views over the batch
  (`synthssl.train.losses.decorrelation`), against dimensional collapse of the backbone.
- L_photo_decorrelation (ours; weight 10 by default, the recommended recipe): the
  same term on the pooled c5 of the real photos of ``batch.real`` (needs ``data.photos``),
  taken apart from the synthetic views so that the domain gap is not counted as a direction.
Any objective with weight 0 is skipped entirely (ablations).

Logged terms: contrast, photo_contrast, decorrelation, photo_decorrelation, depth, normal, contour, adv,
disc_loss, disc_acc, grl_coeff.
Defaults are ours (see docs/train.md), not numbers from the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from synthssl.core.config import need
from synthssl.train.data.batch import ViewBatch
from synthssl.train.losses.decorrelation import weighted_decorrelation
from synthssl.train.losses.nt_xent import nt_xent
from synthssl.train.methods.base import DataNeeds, ExtraOptimizer, Method, MethodConfig, MethodContext, StepInfo
from synthssl.train.methods.projection_config import ProjectionConfig
from synthssl.train.methods.synthetic_terms import SyntheticTerms, SyntheticTermsConfig
from synthssl.train.models.backbone import pooled
from synthssl.train.models.encoder import build_encoder
from synthssl.train.models.projection import ProjectionMLP


@dataclass
class SyntheticContrastConfig(MethodConfig):
    """She & Xu (2021): contrast + depth/normal/contour + adaptation (all defaults are ours)."""

    name: str = "synthetic_contrast"
    temperature: float = 0.1  # measured: docs/quality.md
    """NT-Xent temperature."""
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    """the projection MLP on pooled c5."""
    contrast_weight: float = 1.0
    """weight of the contrast term; 0 = off."""
    photo_contrast_weight: float = 0.0
    """weight of NT-Xent between two crops of each real photo (needs data.photos; ours); 0 = off."""
    decorrelation_weight: float = 0.0
    """weight of the channel-decorrelation term on pooled c5 of the synthetic views (ours); 0 = off."""
    photo_decorrelation_weight: float = 10.0  # measured: docs/quality.md
    """weight of the same term on pooled c5 of the real photos (needs data.photos; ours); 0 = off."""
    synthetic: SyntheticTermsConfig = field(default_factory=SyntheticTermsConfig)
    """the property heads and the feature adaptation."""

    def check(self) -> None:
        need(self.temperature > 0, "temperature", "> 0")
        need(self.contrast_weight >= 0, "contrast_weight", ">= 0 (0 = off)")
        need(self.photo_contrast_weight >= 0, "photo_contrast_weight", ">= 0 (0 = off)")
        need(self.decorrelation_weight >= 0, "decorrelation_weight", ">= 0 (0 = off)")
        need(self.photo_decorrelation_weight >= 0, "photo_decorrelation_weight", ">= 0 (0 = off)")
        need(
            self.contrast_weight > 0
            or self.uses_photo_contrast
            or self.synthetic.uses_properties
            or self.synthetic.uses_adversarial,
            "contrast_weight",
            "> 0, or method.photo_contrast_weight, "
            "method.synthetic.property_weight or adversarial_weight > 0: every objective is off",
        )

    @property
    def uses_photo_contrast(self) -> bool:
        return self.photo_contrast_weight > 0

    def data_needs(self) -> DataNeeds:
        props, adv, photo = self.synthetic.uses_properties, self.synthetic.uses_adversarial, self.uses_photo_contrast
        photo_decor = self.photo_decorrelation_weight > 0
        off = tuple(
            key
            for key, on in (
                ("method.synthetic.adversarial=none", adv),
                ("method.photo_contrast_weight=0", photo),
                ("method.photo_decorrelation_weight=0", photo_decor),
            )
            if on
        )
        return DataNeeds(
            geometry=props,
            real=adv or photo or photo_decor,
            real_off=off,
            real_views=2 if photo else 1,
            real_min=2 if photo_decor else 1,
            fields=("depth", "normal", "contour") if props else (),
        )


class SyntheticContrast(Method):
    """She & Xu (2021): contrast + property maps + adversarial adaptation (see module docstring)."""

    Config = SyntheticContrastConfig

    def __init__(self, cfg: SyntheticContrastConfig, ctx: MethodContext):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(ctx.arch, ctx.small_stem)
        self.use_contrast = cfg.contrast_weight > 0
        channels = self.encoder.channels
        self.synthetic = SyntheticTerms(cfg.synthetic, channels)
        self.projector = (
            ProjectionMLP(channels[-1], cfg.projection.hidden_dim, cfg.projection.dim, cfg.projection.layers)
            if self.use_contrast or cfg.uses_photo_contrast
            else None
        )

    def extra_optimizers(self) -> list[ExtraOptimizer]:
        return self.synthetic.extra_optimizers()

    def exportable_heads(self) -> dict[str, nn.Module]:
        return self.synthetic.exportable_heads()

    def forward(self, batch: ViewBatch, step: StepInfo) -> dict[str, Tensor]:
        cfg = self.cfg
        b, v, _, h, w = batch.rgb.shape
        x = self.synthetic.append_real(batch.rgb.flatten(0, 1), batch)  # [B*V (+ real),3,H,W], sample-major
        feats = self.encoder(x)
        n_syn = b * v
        out: dict[str, Tensor] = {}
        total = x.new_zeros((), dtype=torch.float32)
        rep = pooled(feats[-1][:n_syn])  # [B*V, C5]: the representation of the synthetic views
        real_rep = pooled(feats[-1][n_syn:]) if batch.real is not None else None  # [Br, C5]: the photos'
        if self.use_contrast:
            z = self.projector(rep).view(b, v, -1)
            out["contrast"] = nt_xent(z[:, 0], z[:, 1], cfg.temperature)
            total = total + cfg.contrast_weight * out["contrast"]
        if cfg.uses_photo_contrast:
            zr = self.projector(real_rep).view(-1, 2, cfg.projection.dim)  # [Br/2, 2, D] photo pairs
            out["photo_contrast"] = nt_xent(zr[:, 0], zr[:, 1], cfg.temperature)
            total = total + cfg.photo_contrast_weight * out["photo_contrast"]
        terms, decorrelation_total = weighted_decorrelation(
            rep, real_rep, cfg.decorrelation_weight, cfg.photo_decorrelation_weight
        )
        out.update(terms)
        total = total + decorrelation_total
        terms, synthetic_total = self.synthetic(feats, batch, n_syn, (h, w), step)
        out.update(terms)
        total = total + synthetic_total
        out["loss"] = total
        return out
