"""The Method interface (a shared contract; keep stable).

A Method is an ``nn.Module`` that owns its encoder (``self.encoder``, one
`synthssl.train.models.encoder.Encoder` built with ``build_encoder(ctx.arch,
ctx.small_stem)``: the backbone, its multi-scale levels with their ``channels`` and
``strides``, and the input memory layout) and its heads, and turns one `ViewBatch` into
losses. The trainer owns everything else: data, augmentation, optimisers, precision,
distributed gradient averaging, checkpoints, logging and export (it exports
``method.encoder``).

Writing a method::

    @dataclass
    class Config:                 # the YAML ``method:`` section minus ``name``
        temperature: float = 0.2

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
- ``data_needs()`` says whether the method needs rendered geometry (depth, normals,
  cameras) and/or real photos; the config check uses it to fail early.
- Any state that must survive ``--resume`` lives in parameters or buffers
  (``register_buffer``), so ``state_dict()`` captures it (queues, cluster centres).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from torch import Tensor, nn

from synthssl.train.data.batch import ViewBatch
from synthssl.train.models.encoder import Encoder


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
    num_categories: len(category_names) of the shards (0 for photos only);
    has_geometry: batches carry depth/normal/contour/cameras;
    has_real: batches carry ``real`` photos.
    """

    arch: str = "resnet18"
    small_stem: bool = False
    image_size: int = 64
    views: int = 2
    num_categories: int = 0
    has_geometry: bool = True
    has_real: bool = False


@dataclass(frozen=True)
class DataNeeds:
    """What data a configured method requires.

    geometry: needs rendered maps/cameras (so it cannot train on photo pairs);
    real: needs ``batch.real`` photos;
    fields: the shard view fields to read (``rgb`` is always read), e.g.
    ("depth", "normal", "contour"); None = all of them. ViewBatch fields that are not
    read are None (``valid`` needs ``depth``). Reading fewer fields makes the loader
    faster (each field is one HDF5 read per scene).
    """

    geometry: bool = False
    real: bool = False
    fields: Optional[tuple[str, ...]] = None


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


@dataclass
class _EmptyConfig:
    pass


class Method(nn.Module):
    """Base class of all training methods. See the module docstring."""

    Config: ClassVar[type] = _EmptyConfig
    encoder: Encoder

    def forward(self, batch: ViewBatch, step: StepInfo) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def data_needs(self) -> DataNeeds:
        """Default: needs nothing beyond rgb view pairs (runs on photo pairs)."""
        return DataNeeds()

    def extra_optimizers(self) -> list[ExtraOptimizer]:
        """Default: none."""
        return []

    @torch.no_grad()
    def after_optimizer_step(self, step: StepInfo) -> None:
        """Default: nothing."""
        return None
