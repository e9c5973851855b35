"""Projection MLP for contrastive losses (SimCLR-style)."""

from __future__ import annotations

from torch import Tensor, nn


class ProjectionMLP(nn.Module):
    """``layers - 1`` blocks of Linear -> BatchNorm1d -> ReLU, then Linear:
    [N, in_dim] -> [N, out_dim] (not normalised).

    Defaults (ours): 2 layers, hidden 512, out 128, as in SimCLR. A deeper, wider
    projector (3 layers, hidden 2048, as in SimCLR v2) takes up more of the
    augmentation invariance, so the backbone below it keeps more of what the images
    hold (the "guillotine" effect, Bordes et al. 2022); docs/quality.md measures it.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128, layers: int = 2):
        super().__init__()
        if layers < 1:
            raise ValueError(f"ProjectionMLP: layers must be >= 1, got {layers}")
        blocks: list[nn.Module] = []
        dim = in_dim
        for _ in range(layers - 1):
            blocks += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
            dim = hidden_dim
        blocks.append(nn.Linear(dim, out_dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
