"""Dense projection head: an embedding per feature location (DenseCL / PixPro style).

1x1 conv -> BatchNorm -> ReLU -> 1x1 conv, i.e. the usual 2-layer projection MLP
applied independently at every location. Input float [N, C, h, w] backbone features;
output float [N, out_dim, h, w] (not normalised; the losses normalise).
"""

from __future__ import annotations

from torch import Tensor, nn


class DenseProjectionHead(nn.Module):
    """Per-location 2-layer MLP: C -> hidden_dim -> out_dim."""

    def __init__(self, in_channels: int, hidden_dim: int = 512, out_dim: int = 128):
        super().__init__()
        if min(in_channels, hidden_dim, out_dim) < 1:
            raise ValueError(
                f"DenseProjectionHead: channels must be >= 1, got in={in_channels}, hidden={hidden_dim}, out={out_dim}"
            )
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden_dim, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden_dim, out_dim, kernel_size=1),
        )

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)
