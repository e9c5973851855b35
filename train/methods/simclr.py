"""SimCLR baseline (Chen et al., ICML 2020): NT-Xent between two augmented views.

Pooled c5 -> 2-layer projection MLP (hidden 512, 128-d) -> NT-Xent with the other
2N - 2 embeddings of the global batch as negatives (temperature 0.2, ours). The two
views are what the data gives, each with the trainer's 2-D augmentations (random
resized crop, flip, colour jitter, grayscale, blur): two crops of one photo with
``data.photo_pairs: true`` (SimCLR's own setting), or the two rendered cameras of a
scene on shards (the same inputs DSC and synthetic_contrast see).

Logged terms: contrast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from synthssl.core.config import need
from synthssl.train.data.batch import ViewBatch
from synthssl.train.losses.nt_xent import nt_xent
from synthssl.train.methods.base import Method, MethodConfig, MethodContext, StepInfo
from synthssl.train.methods.projection_config import ProjectionConfig
from synthssl.train.models.encoder import build_encoder
from synthssl.train.models.projection import ProjectionMLP


@dataclass
class SimCLRConfig(MethodConfig):
    """SimCLR: NT-Xent between two augmented views (defaults are ours)."""

    name: str = "simclr"
    temperature: float = 0.2
    """NT-Xent temperature."""
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    """the projection MLP on pooled c5."""

    def check(self) -> None:
        need(self.temperature > 0, "temperature", f"> 0, got {self.temperature}")


class SimCLR(Method):
    Config = SimCLRConfig

    def __init__(self, cfg: SimCLRConfig, ctx: MethodContext):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(ctx.arch, ctx.small_stem)
        self.projector = ProjectionMLP(
            self.encoder.channels[-1], cfg.projection.hidden_dim, cfg.projection.dim, cfg.projection.layers
        )

    def forward(self, batch: ViewBatch, step: StepInfo) -> dict[str, Tensor]:
        b, v = batch.rgb.shape[:2]
        x = batch.rgb.flatten(0, 1)  # [B*V,3,H,W]
        z = self.projector(self.encoder.pooled(x)).view(b, v, -1)
        loss = nt_xent(z[:, 0], z[:, 1], self.cfg.temperature)
        return {"loss": loss, "contrast": loss}
