"""Projection MLP for contrastive losses (SimCLR-style)."""
from __future__ import annotations

from torch import Tensor, nn


class ProjectionMLP(nn.Module):
    """Linear -> BatchNorm1d -> ReLU -> Linear: [N, in_dim] -> [N, out_dim] (not normalised).

    Defaults (ours): hidden 512, out 128 -- a 2-layer MLP to 128-d as in SimCLR.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
