"""Dense Semantic Contrast (Li et al., ACM MM 2021) with our defaults (docs/dsc.md).

L = weight_instance * L_ins + weight_pixel * L_pix + w_sem(step) * L_sem
    [+ decorrelation_weight * L_decorrelation + photo_decorrelation_weight * L_photo_decorrelation]
    [+ synthetic.property_weight * (L_depth + L_normal + L_contour) + synthetic.adversarial_weight * L_adv]

- Instance: pooled c5 -> projection MLP -> NT-Xent between the two views (the
  trainer's `nt_xent`, negatives gathered across ranks), temperature 0.2.
- Pixel: `DenseProjectionHead` on the ``dense_level`` map (c5 default) -> one embedding
  per location. Positives of a view-1 location are its neighbours in view 2, by the
  ``neighbours`` rule: ``geometric`` (exact correspondences from rendered depth and
  cameras, occlusion-tested, and normal-consistent within ``normal_tol_deg`` unless it
  is null; rendered data only), ``crop`` (PixPro: centres in the
  original image within 0.7 x location diagonal) or ``feature`` (DenseCL: top-k cosine
  of backbone features). Multi-positive InfoNCE over ``pixel_samples`` sampled
  locations per image against all sampled locations of the global batch.
- Semantic: pseudo-classes of every location of both views from *target* embeddings
  (the detached online dense embeddings, or a momentum copy of backbone + dense head
  when ``target_momentum`` is set): ``kmeans`` (cosine, ``kmeans_iterations`` Lloyd
  steps, warm-started from the last step's centroids) or ``prototypes`` (learnable
  prototypes + Sinkhorn, eps 0.05, 3 iterations, plus their cross-entropy). Then a
  supervised-contrastive loss over ``semantic_samples`` locations per image and view
  across the global batch. Weight 0 (and not computed) before ``semantic_warmup_steps``.
- Optional decorrelation terms (ours, `synthssl.train.losses.decorrelation`, as in
  `synthetic_contrast`): the channel decorrelation of pooled c5 of the synthetic views
  and of the photos, against the dimensional collapse of instance contrast on
  out-of-domain images (docs/quality.md).
- Optional synthetic-data terms of `synthetic_contrast` (its `PropertyDecoder`,
  `Discriminator` and losses, reused), under ``method.synthetic``: ``property_weight`` > 0
  adds depth / normal / contour prediction; ``adversarial`` = gan | dann adds
  feature-level adaptation to ``batch.real``.

Logged terms: instance, pixel, semantic, prototype (prototype variant), cluster_entropy
(cluster-size entropy / log K), cluster_largest (fraction in the largest cluster),
clusters_nonempty, matched_fraction (view-1 locations with a positive), semantic_weight,
and depth / normal / contour / adv / disc_loss / disc_acc when the synthetic terms are on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import torch
from torch import Tensor, nn

from synthssl.core.config import need
from synthssl.train.clustering.pseudo_labels import KMeansLabeler, PrototypeLabeler
from synthssl.train.data.batch import ViewBatch
from synthssl.train.distributed import global_mean
from synthssl.train.losses.decorrelation import weighted_decorrelation
from synthssl.train.losses.nt_xent import nt_xent
from synthssl.train.losses.pixel_contrast import pixel_contrast_loss
from synthssl.train.losses.semantic_contrast import sampled_pixels, semantic_contrast_loss
from synthssl.train.methods.base import DataNeeds, ExtraOptimizer, Method, MethodConfig, MethodContext, StepInfo
from synthssl.train.methods.projection_config import ProjectionConfig
from synthssl.train.methods.synthetic_terms import SyntheticTerms, SyntheticTermsConfig
from synthssl.train.models.backbone import LEVEL_INDEX, pooled
from synthssl.train.models.dense_head import DenseProjectionHead
from synthssl.train.models.encoder import build_encoder
from synthssl.train.models.projection import ProjectionMLP
from synthssl.train.momentum.momentum import ema_update, momentum_copy
from synthssl.train.neighbours.crop_neighbours import crop_neighbours
from synthssl.train.neighbours.dense_correspondence import geometric_neighbours
from synthssl.train.neighbours.dense_neighbours import DenseNeighbours
from synthssl.train.neighbours.feature_neighbours import feature_neighbours


@dataclass
class DSCConfig(MethodConfig):
    """Dense Semantic Contrast: instance, pixel and semantic levels (all defaults are ours, docs/dsc.md)."""

    name: str = "dsc"
    # instance level
    temperature: float = 0.2
    """instance level: NT-Xent temperature."""
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    """instance level: the projection MLP on pooled c5."""
    # pixel level
    dense_level: Literal["c4", "c5"] = "c5"
    """pixel level: backbone level of the dense embeddings."""
    dense_hidden_dim: int = 512
    """pixel level: dense head hidden width."""
    dense_dim: int = 128
    """pixel level: dense embedding dimension."""
    neighbours: Literal["geometric", "crop", "feature"] = "geometric"
    """pixel level: positives from exact correspondences (geometric; shards), crop geometry (crop; photo pairs) or
    top-k feature similarity (feature)."""
    geometric_radius: float = 0.5
    """geometric: match radius in dense-map cells."""
    occlusion_tol: float = 0.02
    """geometric: relative depth tolerance of the occlusion test."""
    depth_tol: float = 0.05
    """geometric: relative depth tolerance of a match."""
    normal_tol_deg: Optional[float] = 45.0
    """geometric: largest normal angle between matched points (degrees); null = off."""
    crop_radius: float = 0.7
    """crop: positives within this many location diagonals."""
    feature_topk: int = 1
    """feature: positives per location."""
    pixel_samples: int = 16
    """pixel level: locations sampled per image."""
    pixel_temperature: float = 0.2
    """pixel level: InfoNCE temperature."""
    # semantic level
    semantic: Literal["kmeans", "prototypes"] = "kmeans"
    """semantic level: pseudo-labels by k-means or learnable prototypes + Sinkhorn."""
    num_clusters: int = 32
    """semantic level: pseudo-classes."""
    kmeans_iterations: int = 3
    """kmeans: Lloyd steps per training step."""
    sinkhorn_epsilon: float = 0.05
    """prototypes: Sinkhorn entropy."""
    sinkhorn_iterations: int = 3
    """prototypes: Sinkhorn iterations."""
    prototype_temperature: float = 0.1
    """prototypes: softmax temperature."""
    semantic_samples: int = 8
    """semantic level: locations sampled per image and view."""
    semantic_temperature: float = 0.1
    """semantic level: supervised-contrastive temperature."""
    semantic_warmup_steps: int = 500
    """semantic level: weight 0 (not computed) before this step."""
    target_momentum: Optional[float] = None
    """semantic targets from a momentum copy with this momentum; null = the detached online embeddings."""
    # weights
    weight_instance: float = 1.0
    """weight of the instance level; 0 = skipped."""
    weight_pixel: float = 1.0
    """weight of the pixel level; 0 = skipped."""
    weight_semantic: float = 1.0
    """weight of the semantic level after its warm-up; 0 = skipped."""
    decorrelation_weight: float = 0.0
    """weight of the channel-decorrelation term on pooled c5 of the synthetic views (ours, as in
    synthetic_contrast); 0 = off."""
    photo_decorrelation_weight: float = 0.0
    """weight of the same term on pooled c5 of the real photos (needs data.photos; ours); 0 = off."""
    synthetic: SyntheticTermsConfig = field(
        default_factory=lambda: SyntheticTermsConfig(property_weight=0.0, adversarial="none")
    )
    """the She & Xu terms DSC can add (off by default here)."""

    def check(self) -> None:
        for key in (
            "temperature",
            "pixel_temperature",
            "semantic_temperature",
            "prototype_temperature",
            "sinkhorn_epsilon",
            "geometric_radius",
            "crop_radius",
        ):
            need(getattr(self, key) > 0, key, f"> 0, got {getattr(self, key)}")
        for key in ("pixel_samples", "semantic_samples", "feature_topk", "kmeans_iterations", "sinkhorn_iterations"):
            need(getattr(self, key) >= 1, key, f">= 1, got {getattr(self, key)}")
        need(
            self.normal_tol_deg is None or 0 < self.normal_tol_deg <= 180,
            "normal_tol_deg",
            f"null (off) or a value in (0, 180], got {self.normal_tol_deg}",
        )
        need(self.num_clusters >= 2, "num_clusters", f">= 2, got {self.num_clusters}")
        need(
            self.target_momentum is None or 0.0 <= self.target_momentum < 1.0,
            "target_momentum",
            f"null or a value in [0, 1), got {self.target_momentum}",
        )
        need(self.decorrelation_weight >= 0, "decorrelation_weight", ">= 0 (0 = off)")
        need(self.photo_decorrelation_weight >= 0, "photo_decorrelation_weight", ">= 0 (0 = off)")
        weights = (self.weight_instance, self.weight_pixel, self.weight_semantic)
        need(
            min(weights) >= 0 and max(weights) > 0,
            "weight_instance/weight_pixel/weight_semantic",
            "values >= 0, not all 0 (a level with weight 0 is skipped)",
        )

    def data_needs(self) -> DataNeeds:
        adv, photo_decor = self.synthetic.uses_adversarial, self.photo_decorrelation_weight > 0
        off = tuple(
            key
            for key, on in (
                ("method.synthetic.adversarial=none", adv),
                ("method.photo_decorrelation_weight=0", photo_decor),
            )
            if on
        )
        return DataNeeds(
            geometry=self.neighbours == "geometric" or self.synthetic.uses_properties,
            real=adv or photo_decor,
            real_off=off,
            real_min=2 if photo_decor else 1,
            two_crops=self.neighbours == "crop",
        )


def _flat_locations(x: Tensor) -> Tensor:
    """[M, D, h, w] -> [M, D, h*w] (row-major locations), float32."""
    return x.flatten(2).float()


class DSC(Method):
    Config = DSCConfig

    def __init__(self, cfg: DSCConfig, ctx: MethodContext):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(ctx.arch, ctx.small_stem)
        channels = self.encoder.channels
        self.level = LEVEL_INDEX[cfg.dense_level]
        self.projector = ProjectionMLP(
            channels[-1], cfg.projection.hidden_dim, cfg.projection.dim, cfg.projection.layers
        )
        self.dense_head = DenseProjectionHead(channels[self.level], cfg.dense_hidden_dim, cfg.dense_dim)
        if cfg.semantic == "kmeans":
            self.labeler = KMeansLabeler(cfg.dense_dim, cfg.num_clusters, cfg.kmeans_iterations)
        else:
            self.labeler = PrototypeLabeler(
                cfg.dense_dim,
                cfg.num_clusters,
                cfg.sinkhorn_epsilon,
                cfg.sinkhorn_iterations,
                cfg.prototype_temperature,
            )
        if cfg.target_momentum is not None:
            self.target_encoder = momentum_copy(self.encoder)
            self.target_dense_head = momentum_copy(self.dense_head)
        self.synthetic = SyntheticTerms(cfg.synthetic, channels)

    # ------------------------------------------------------------------ trainer hooks
    def extra_optimizers(self) -> list[ExtraOptimizer]:
        return self.synthetic.extra_optimizers()

    def exportable_heads(self) -> dict[str, nn.Module]:
        return self.synthetic.exportable_heads()

    @torch.no_grad()
    def after_optimizer_step(self, step: StepInfo) -> None:
        if self.cfg.target_momentum is not None:
            ema_update(self.encoder, self.target_encoder, self.cfg.target_momentum)
            ema_update(self.dense_head, self.target_dense_head, self.cfg.target_momentum)

    # ------------------------------------------------------------------ levels
    def semantic_weight(self, step: StepInfo) -> float:
        """weight_semantic after the warm-up, 0 before."""
        return self.cfg.weight_semantic if step.step >= self.cfg.semantic_warmup_steps else 0.0

    def neighbours(self, batch: ViewBatch, dense_features: Tensor) -> DenseNeighbours:
        """Positives of view-1 locations among view-2 locations by the configured rule.

        dense_features: backbone features at the dense level [B, V, C, h, w].
        """
        cfg = self.cfg
        hw = tuple(dense_features.shape[-2:])
        if cfg.neighbours == "geometric":
            normals = {}
            if cfg.normal_tol_deg is not None and batch.normal is not None:
                normals = dict(
                    normal1=batch.normal[:, 0],
                    normal2=batch.normal[:, 1],
                    flipped1=batch.flipped[:, 0],
                    flipped2=batch.flipped[:, 1],
                    normal_tol_deg=cfg.normal_tol_deg,
                )
            return geometric_neighbours(
                batch.depth[:, 0],
                batch.intrinsics[:, 0],
                batch.cam_to_world[:, 0],
                batch.depth[:, 1],
                batch.intrinsics[:, 1],
                batch.cam_to_world[:, 1],
                hw,
                hw,
                cfg.geometric_radius,
                cfg.occlusion_tol,
                cfg.depth_tol,
                **normals,
            )
        if cfg.neighbours == "crop":
            return crop_neighbours(
                batch.crop_boxes[:, 0],
                batch.flipped[:, 0],
                batch.crop_boxes[:, 1],
                batch.flipped[:, 1],
                hw,
                hw,
                cfg.crop_radius,
            )
        return feature_neighbours(dense_features[:, 0].detach(), dense_features[:, 1].detach(), cfg.feature_topk)

    def level_losses(
        self, z: Tensor, dense: Tensor, targets: Tensor, neighbours: DenseNeighbours, step: StepInfo
    ) -> dict[str, Tensor]:
        """The three DSC levels from embeddings (usable with any encoder).

        z: [B, V, D] instance embeddings; dense: [B, V, D', h, w] online dense embeddings;
        targets: [B, V, D', h, w] target dense embeddings (detached or momentum);
        neighbours: view-1 -> view-2 positives. Returns instance, pixel, semantic (+ stats)
        and the weighted ``loss``.
        """
        cfg = self.cfg
        B, V = z.shape[:2]
        out: dict[str, Tensor] = {}
        total = z.new_zeros((), dtype=torch.float32)
        if cfg.weight_instance > 0:
            out["instance"] = nt_xent(z[:, 0], z[:, 1], cfg.temperature)
            total = total + cfg.weight_instance * out["instance"]
        e = _flat_locations(dense.flatten(0, 1)).view(B, V, dense.shape[2], -1)  # [B, V, D, N]
        if cfg.weight_pixel > 0:
            out["pixel"] = pixel_contrast_loss(e[:, 0], e[:, 1], neighbours, cfg.pixel_samples, cfg.pixel_temperature)
            total = total + cfg.weight_pixel * out["pixel"]
        out["matched_fraction"] = neighbours.has_partner.float().mean().detach()
        w_sem = self.semantic_weight(step)
        if w_sem > 0:
            out.update(self._semantic(e.flatten(0, 1), targets, step))
            total = total + w_sem * out["semantic"]
        out["semantic_weight"] = torch.tensor(w_sem, device=z.device)
        out["loss"] = total
        return out

    def _semantic(self, e: Tensor, targets: Tensor, step: StepInfo) -> dict[str, Tensor]:
        """e: [M, D, N] online dense embeddings (M = B*V); targets [B, V, D, h, w]."""
        cfg = self.cfg
        M, D, N = e.shape
        t = _flat_locations(targets.flatten(0, 1)).transpose(1, 2).reshape(M * N, D).detach()
        sample = sampled_pixels(e, cfg.semantic_samples)  # [M*S, D], [M*S]
        out: dict[str, Tensor] = {}
        if isinstance(self.labeler, KMeansLabeler):
            labels, stats = self.labeler(t, seed=step.step)
            out["semantic"] = semantic_contrast_loss(
                e, labels.view(M, N), cfg.semantic_samples, cfg.semantic_temperature, sampled=sample
            )
        else:
            labels, codes, stats = self.labeler(t)
            pix, rows = sample
            out["prototype"] = global_mean(
                self.labeler.prototype_loss(pix, codes[rows]),
                torch.ones(pix.shape[0], dtype=torch.bool, device=pix.device),
            )
            out["semantic"] = (
                semantic_contrast_loss(
                    e, labels.view(M, N), cfg.semantic_samples, cfg.semantic_temperature, sampled=sample
                )
                + out["prototype"]
            )
        out["cluster_entropy"] = stats["entropy"]
        out["cluster_largest"] = stats["largest"]
        out["clusters_nonempty"] = stats["nonempty"]
        return out

    # ------------------------------------------------------------------ forward
    def forward(self, batch: ViewBatch, step: StepInfo) -> dict[str, Tensor]:
        cfg = self.cfg
        B, V, _, H, W = batch.rgb.shape
        if V != 2:
            raise ValueError(f"dsc: expects view pairs (V = 2), got V = {V}")
        x = self.synthetic.append_real(batch.rgb.flatten(0, 1), batch)  # [B*V (+ real),3,H,W]
        n_syn = B * V
        feats = self.encoder(x)
        rep = pooled(feats[-1][:n_syn])  # [B*V, C5]: the representation of the synthetic views
        z = self.projector(rep).view(B, V, -1)
        level = feats[self.level][:n_syn]
        dense = self.dense_head(level)
        dense = dense.view(B, V, *dense.shape[1:])
        if cfg.target_momentum is not None and self.semantic_weight(step) > 0:
            with torch.no_grad():
                t_feats = self.target_encoder(x[:n_syn])
                targets = self.target_dense_head(t_feats[self.level]).view_as(dense)
        else:
            targets = dense.detach()
        neighbours = self.neighbours(batch, level.view(B, V, *level.shape[1:]))
        out = self.level_losses(z, dense, targets, neighbours, step)
        real_rep = pooled(feats[-1][n_syn:]) if batch.real is not None else None  # [Br, C5]: the photos'
        decor, decorrelation_total = weighted_decorrelation(
            rep, real_rep, cfg.decorrelation_weight, cfg.photo_decorrelation_weight
        )
        terms, synthetic_total = self.synthetic(feats, batch, n_syn, (H, W), step)
        out.update(decor)
        out.update(terms)
        out["loss"] = out["loss"] + decorrelation_total + synthetic_total
        return out
