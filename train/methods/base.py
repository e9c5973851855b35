"""The Method interface (a shared contract; keep stable).

A Method is an ``nn.Module`` that owns its encoder (``self.encoder``, one
`synthssl.train.models.encoder.Encoder` built with ``build_encoder(ctx.arch,
ctx.small_stem)``: the backbone, its multi-scale levels with their ``channels`` and
``strides``, and the input memory layout) and its heads, and turns one `ViewBatch` into
losses. The trainer owns everything else: data, augmentation, optimisers, precision,
distributed gradient averaging, checkpoints, logging and export (it exports
``method.encoder`` and the heads ``exportable_heads()`` names).

Writing a method::

    @dataclass
    class Config(MethodConfig):   # the YAML ``method:`` section
        name: str = "mine"
        temperature: float = 0.2
        def check(self):          # its own value checks (synthssl.core.config.need)
            need(self.temperature > 0, "temperature", "> 0")
        def data_needs(self):     # what data it needs, read before anything is built
            return DataNeeds(geometry=True)

    class MyMethod(Method):
        Config = Config
        def __init__(self, cfg: Config, ctx: MethodContext):
            super().__init__()
            self.cfg = cfg
            self.encoder = build_encoder(ctx.arch, ctx.small_stem)
        def forward(self, batch, step):
            ...
            return {"loss": total, "contrast": l_c}

Rules
-----
- ``forward(batch, step)`` returns a dict of scalar tensors: ``"loss"`` is the weighted
  total that the main optimiser minimises; every other entry is logged as its own
  term (return them detached or not; the trainer detaches for logging). Losses are
  the *local* mean over this rank's samples; the trainer averages gradients over
  ranks, so cross-rank terms must use `synthssl.train.distributed.gather_with_grad`.
- Extra optimisers (e.g. a GAN discriminator): return them from
  ``extra_optimizers()`` as `ExtraOptimizer` records. Their parameters are excluded
  from the main optimiser; the trainer back-propagates ``out[loss_key]`` into exactly
  those parameters and ``out["loss"]`` into all the others (so an encoder term that
  flows through the discriminator never updates it). Both come from the same forward
  pass and are stepped together.
- ``after_optimizer_step(step)`` runs after every optimiser step (e.g. momentum
  encoder EMA updates); it runs under ``torch.no_grad()``.
- ``Config.data_needs()`` says whether the configured method needs rendered geometry
  (depth, normals, cameras), real photos or two crops of one image, and which shard
  fields to read; the trainer checks the data against it before building anything and
  hands the method only batches that satisfy it (methods do not re-check at run time).
- Any state that must survive ``--resume`` lives in parameters or buffers
  (``register_buffer``), so ``state_dict()`` captures it (queues, cluster centres).
- ``exportable_heads()`` names the trained heads that are useful without the method
  (default: none). The export writes them next to the encoder (`synthssl.train.export`)
  and ``train.ema_decay`` averages them with it. The export format knows one head,
  ``"properties"``: a `PropertyDecoder` (depth, normals, contours); training heads such
  as projectors, queues and discriminators are not exportable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from synthssl.train.data.batch import ViewBatch
from synthssl.train.methods.method_config import DataNeeds, MethodConfig
from synthssl.train.models.encoder import Encoder

__all__ = ["StepInfo", "MethodContext", "DataNeeds", "MethodConfig", "ExtraOptimizer", "Method"]


@dataclass(frozen=True)
class StepInfo:
    """Where training stands when a step is taken.

    step: 0-based index of the optimiser step being computed.
    total_steps: number of optimiser steps of the whole run (> 0).
    """

    step: int
    total_steps: int

    @property
    def progress(self) -> float:
        """Fraction of training done before this step, in [0, 1]."""
        return min(1.0, max(0.0, self.step / max(1, self.total_steps)))

    def ramp(self, gamma: float = 10.0) -> float:
        """DANN coefficient 2 / (1 + exp(-gamma * p)) - 1: 0 at p=0, -> 1 at p=1."""
        return 2.0 / (1.0 + math.exp(-gamma * self.progress)) - 1.0


@dataclass(frozen=True)
class MethodContext:
    """What the trainer tells a method when building it.

    arch: "resnet18" | "resnet34" | "resnet50" | "timm:NAME"; small_stem: CIFAR-style stem for 32-96 px inputs;
    image_size: training resolution (square, pixels); views: V (2);
    num_categories: len(category_names) of the shards (0 for photos only).
    What data the method gets is settled before it is built, from its config's
    ``data_needs()`` (`synthssl.train.methods.method_config`).
    """

    arch: str = "resnet18"
    small_stem: bool = False
    image_size: int = 64
    views: int = 2
    num_categories: int = 0


@dataclass
class ExtraOptimizer:
    """A parameter group with its own optimiser (AdamW) and its own loss.

    name: used in logs and checkpoints; loss_key: key of `forward`'s output dict that
    this optimiser minimises; lr / betas / weight_decay: AdamW settings.
    """

    name: str
    params: list[nn.Parameter]
    loss_key: str
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0


class Method(nn.Module):
    """Base class of all training methods. See the module docstring."""

    Config: ClassVar[type] = MethodConfig
    encoder: Encoder

    def forward(self, batch: ViewBatch, step: StepInfo) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def extra_optimizers(self) -> list[ExtraOptimizer]:
        """Default: none."""
        return []

    @torch.no_grad()
    def after_optimizer_step(self, step: StepInfo) -> None:
        """Default: nothing."""
        return None

    def exportable_heads(self) -> dict[str, nn.Module]:
        """The heads the export writes next to the encoder, by name (see the module docstring). Default: none."""
        return {}
