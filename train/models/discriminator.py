"""Domain discriminator on a backbone feature map (synthetic vs real).

``blocks`` x [conv3x3 stride 2 -> BatchNorm -> LeakyReLU(0.2)] then a 1x1 conv to one
logit per remaining location: [N, C, h, w] -> [N, 1, ceil(h/2^blocks), ceil(w/2^blocks)].
Positive logit = "real photo". (Design of Ren & Lee 2018; width is our default.)
"""

from __future__ import annotations

from torch import Tensor, nn


class Discriminator(nn.Module):
    """Per-location domain logits of a feature map (see module docstring)."""

    def __init__(self, in_channels: int, width: int = 256, blocks: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(blocks):
            layers += [
                nn.Conv2d(c, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            c = width
        layers.append(nn.Conv2d(c, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
