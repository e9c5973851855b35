"""DenseCL baseline (Wang et al., CVPR 2021): MoCo v2 + a dense contrastive term.

Global: MoCo v2 (see `mocov2`). Dense: a `DenseProjectionHead` on c5 (query) and its
momentum copy (keys). Each query location of view 1 is matched to the view-2 key
location whose *backbone* c5 feature is most similar (cosine; query encoder vs key
encoder, the DenseCL rule); the matched dense key is its positive and a second queue
of pooled dense keys (one per image) provides the negatives. Symmetrised over views.
L = (1 - dense_weight) * L_global + dense_weight * L_dense, dense_weight 0.5, and 0
for the first ``dense_warmup_steps`` (DenseCL: ~1000 iterations).

Logged terms: global, dense, dense_weight, momentum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from synthssl.core.config import need
from synthssl.train import distributed
from synthssl.train.data.batch import ViewBatch
from synthssl.train.losses.queue_infonce import symmetric_queue_info_nce
from synthssl.train.methods.base import MethodContext, StepInfo
from synthssl.train.methods.mocov2 import MoCoV2, MoCoV2Config
from synthssl.train.models.dense_head import DenseProjectionHead
from synthssl.train.momentum.feature_queue import FeatureQueue
from synthssl.train.momentum.momentum import momentum_copy, momentum_schedule
from synthssl.train.neighbours.feature_neighbours import feature_neighbours


@dataclass
class DenseCLConfig(MoCoV2Config):
    """DenseCL: MoCo v2 plus a dense term over feature-matched locations (defaults ours)."""

    name: str = "densecl"
    dense_hidden_dim: int = 512
    """dense head hidden width."""
    dense_weight: float = 0.5
    """share of the dense term: (1 - w) * global + w * dense."""
    dense_warmup_steps: int = 1000
    """the dense term is off before this step."""

    def check(self) -> None:
        super().check()
        need(0.0 <= self.dense_weight <= 1.0, "dense_weight", f"a value in [0, 1], got {self.dense_weight}")


class DenseCL(MoCoV2):
    Config = DenseCLConfig

    def __init__(self, cfg: DenseCLConfig, ctx: MethodContext):
        super().__init__(cfg, ctx)
        self.dense_head = DenseProjectionHead(self.encoder.channels[-1], cfg.dense_hidden_dim, cfg.projection.dim)
        self.key_dense_head = momentum_copy(self.dense_head)
        self.dense_queue = FeatureQueue(cfg.projection.dim, cfg.queue_size)

    def online_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return super().online_pairs() + [(self.dense_head, self.key_dense_head)]

    def dense_weight(self, step: StepInfo) -> float:
        return self.cfg.dense_weight if step.step >= self.cfg.dense_warmup_steps else 0.0

    def forward(self, batch: ViewBatch, step: StepInfo) -> dict[str, Tensor]:
        cfg = self.cfg
        b, v = batch.rgb.shape[:2]
        x = batch.rgb.flatten(0, 1)
        feats, q = self.encode(x)
        key_feats, k = self.encode_keys(x)
        q, k = q.view(b, v, -1), k.view(b, v, -1)
        negatives = self.queue.queue.clone()
        l_global = symmetric_queue_info_nce(q[:, 0], k[:, 1], q[:, 1], k[:, 0], negatives, cfg.temperature)
        c5, key_c5 = feats[-1], key_feats[-1]
        dq = self.dense_head(c5).flatten(2)  # [B*V, D, N]
        with torch.no_grad():
            dk = self.key_dense_head(key_c5).flatten(2)
        dq, dk = dq.view(b, v, *dq.shape[1:]), dk.view(b, v, *dk.shape[1:])
        c5, key_c5 = c5.view(b, v, *c5.shape[1:]), key_c5.view(b, v, *key_c5.shape[1:])
        dense_negatives = self.dense_queue.queue.clone()
        d = dq.shape[2]
        pairs = []  # (queries of view i, their matched keys in view j) as [B*N, D]
        for i, j in ((0, 1), (1, 0)):
            match = feature_neighbours(c5[:, i].detach(), key_c5[:, j], k=1).partner  # [B, N]
            pos = torch.gather(dk[:, j], 2, match[:, None, :].expand_as(dk[:, j]))  # [B, D, N]
            pairs += [dq[:, i].transpose(1, 2).reshape(-1, d), pos.transpose(1, 2).reshape(-1, d)]
        l_dense = symmetric_queue_info_nce(*pairs, dense_negatives, cfg.temperature)
        if self.training:
            self.queue.enqueue(distributed.gather_no_grad(k.flatten(0, 1)))
            self.dense_queue.enqueue(distributed.gather_no_grad(F.normalize(dk.float().mean(3), dim=2).flatten(0, 1)))
        w = self.dense_weight(step)
        m = momentum_schedule(cfg.momentum, step.progress, cfg.momentum_cosine)
        return {
            "loss": (1.0 - w) * l_global + w * l_dense,
            "global": l_global,
            "dense": l_dense,
            "dense_weight": torch.tensor(w, device=l_global.device),
            "momentum": torch.tensor(m, device=l_global.device),
        }
