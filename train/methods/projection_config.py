"""The ``method.projection:`` block shared by every method with a projection MLP (torch-free).

simclr, mocov2 (and densecl, which extends it), synthetic_contrast and dsc each hold
one `ProjectionConfig` under ``method.projection``; their model is
`synthssl.train.models.projection.ProjectionMLP` (pooled c5 -> ``layers - 1`` blocks of
Linear-BN-ReLU of ``hidden_dim`` -> Linear to ``dim``).
"""

from __future__ import annotations

from dataclasses import dataclass

from synthssl.core.config import need


@dataclass
class ProjectionConfig:
    """The projection MLP on pooled c5 whose outputs the instance contrast compares."""

    hidden_dim: int = 512
    """hidden width of the MLP."""
    dim: int = 128
    """output dimension (the embedding the contrastive loss sees)."""
    layers: int = 2
    """Linear layers (1 = one linear map; 2 = Linear-BN-ReLU-Linear, as in SimCLR)."""

    def check(self) -> None:
        for key in ("hidden_dim", "dim", "layers"):
            need(getattr(self, key) >= 1, key, f">= 1, got {getattr(self, key)}")
