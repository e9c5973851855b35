"""MoCo v2 baseline (Chen et al., 2020): momentum encoder + queue of negative keys.

Query encoder: backbone -> pooled c5 -> 2-layer projection MLP (128-d). Key encoder: a
momentum copy of both (EMA after every optimiser step, ``momentum`` 0.99 by default:
our runs are short; MoCo uses 0.999). Symmetrised InfoNCE, temperature 0.2:
L = 1/2 [ nce(q1, k2, queue) + nce(q2, k1, queue) ], where the queue holds the keys of
the last ``queue_size`` samples of the *global* batch (gathered across ranks, so every
rank keeps the same queue; the queue is a buffer, saved in checkpoints).

Not done: MoCo's shuffle-BN (with several ranks the trainer's SyncBatchNorm also
normalises the key encoder over the global batch).

Logged terms: contrast, momentum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from synthssl.core.config import need
from synthssl.train import distributed
from synthssl.train.data.batch import ViewBatch
from synthssl.train.losses.queue_infonce import symmetric_queue_info_nce
from synthssl.train.methods.base import Method, MethodConfig, MethodContext, StepInfo
from synthssl.train.methods.projection_config import ProjectionConfig
from synthssl.train.models.backbone import pooled
from synthssl.train.models.encoder import build_encoder
from synthssl.train.models.projection import ProjectionMLP
from synthssl.train.momentum.feature_queue import FeatureQueue
from synthssl.train.momentum.momentum import ema_update, momentum_copy, momentum_schedule


@dataclass
class MoCoV2Config(MethodConfig):
    """MoCo v2: a momentum key encoder and a queue of negatives (defaults are ours)."""

    name: str = "mocov2"
    temperature: float = 0.2
    """InfoNCE temperature."""
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    """the projection MLP on pooled c5."""
    queue_size: int = 4096
    """negatives kept in the queue."""
    momentum: float = 0.99
    """EMA momentum of the key encoder."""
    momentum_cosine: bool = False
    """raise the momentum to 1 on a cosine schedule."""

    def check(self) -> None:
        need(0.0 <= self.momentum < 1.0, "momentum", f"a value in [0, 1), got {self.momentum}")
        need(self.queue_size >= 1, "queue_size", f">= 1, got {self.queue_size}")
        need(self.temperature > 0, "temperature", f"> 0, got {self.temperature}")


class MoCoV2(Method):
    Config = MoCoV2Config

    def __init__(self, cfg: MoCoV2Config, ctx: MethodContext):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(ctx.arch, ctx.small_stem)
        self.projector = ProjectionMLP(
            self.encoder.channels[-1], cfg.projection.hidden_dim, cfg.projection.dim, cfg.projection.layers
        )
        self.key_encoder = momentum_copy(self.encoder)
        self.key_projector = momentum_copy(self.projector)
        self.queue = FeatureQueue(cfg.projection.dim, cfg.queue_size)

    def online_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        """(online, momentum) module pairs updated by EMA."""
        return [(self.encoder, self.key_encoder), (self.projector, self.key_projector)]

    @torch.no_grad()
    def after_optimizer_step(self, step: StepInfo) -> None:
        m = momentum_schedule(self.cfg.momentum, step.progress, self.cfg.momentum_cosine)
        for online, target in self.online_pairs():
            ema_update(online, target, m)

    def encode(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """Query features [c2..c5] and embeddings [N, projection.dim] of images x [N,3,H,W]."""
        feats = self.encoder(x)
        return feats, self.projector(pooled(feats[-1]))

    @torch.no_grad()
    def encode_keys(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """Momentum-encoder features and key embeddings of x."""
        feats = self.key_encoder(x)
        return feats, self.key_projector(pooled(feats[-1]))

    def forward(self, batch: ViewBatch, step: StepInfo) -> dict[str, Tensor]:
        b, v = batch.rgb.shape[:2]
        x = batch.rgb.flatten(0, 1)
        _, q = self.encode(x)
        _, k = self.encode_keys(x)
        q, k = q.view(b, v, -1), k.view(b, v, -1)
        negatives = self.queue.queue.clone()
        loss = symmetric_queue_info_nce(q[:, 0], k[:, 1], q[:, 1], k[:, 0], negatives, self.cfg.temperature)
        if self.training:
            self.queue.enqueue(distributed.gather_no_grad(k.flatten(0, 1)))
        m = momentum_schedule(self.cfg.momentum, step.progress, self.cfg.momentum_cosine)
        return {"loss": loss, "contrast": loss, "momentum": torch.tensor(m, device=loss.device)}
