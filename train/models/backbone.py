"""torchvision ResNet backbones (a shared contract; keep stable).

`build_backbone(arch, small_stem)` returns a plain ``torchvision.models.ResNet`` (random
init). ``small_stem=True`` is the CIFAR-style stem for 32-96 px inputs: conv1 keeps its
7x7 weight shape but uses stride 1, and the max-pool becomes ``nn.Identity``; the
parameter names and shapes are unchanged, so the state_dict still loads with
``strict=True`` into ``torchvision.models.resnet18()`` / ``resnet50()``.

`ResNetFeatures(resnet)` runs the ResNet trunk and returns [c2, c3, c4, c5]
(outputs of layer1..layer4). With the standard stem their strides are 4, 8, 16, 32;
with the small stem 1, 2, 4, 8. Channels: resnet18 (64, 128, 256, 512),
resnet50 (256, 512, 1024, 2048). ``.channels`` and ``.strides`` give them.
"""
from __future__ import annotations

import torch
import torchvision
from torch import Tensor, nn

ARCHS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
}


def build_backbone(arch: str = "resnet18", small_stem: bool = False) -> torchvision.models.ResNet:
    """A randomly initialised torchvision ResNet (fc kept, untouched by training)."""
    if arch not in ARCHS:
        raise ValueError(f"model.arch: unknown backbone {arch!r}; choose one of {sorted(ARCHS)}")
    resnet = getattr(torchvision.models, arch)(weights=None)
    if small_stem:
        resnet.conv1.stride = (1, 1)
        resnet.maxpool = nn.Identity()
    return resnet


def is_small_stem(resnet: torchvision.models.ResNet) -> bool:
    """True if `resnet` uses the small stem (conv1 stride 1, no max-pool)."""
    return tuple(resnet.conv1.stride) == (1, 1) and isinstance(resnet.maxpool, nn.Identity)


#: Index of each named level in ResNetFeatures' output list [c2, c3, c4, c5].
LEVEL_INDEX = {"c2": 0, "c3": 1, "c4": 2, "c5": 3}


class ResNetFeatures(nn.Module):
    """Multi-scale features of a torchvision ResNet (shares its modules, no copy).

    Input: float [N,3,H,W] normalised images. Output: list [c2, c3, c4, c5] of
    float [N,C_i,H/s_i,W/s_i].
    """

    def __init__(self, resnet: torchvision.models.ResNet):
        super().__init__()
        self.resnet = resnet
        self.channels: tuple[int, ...] = tuple(
            layer[-1].conv3.out_channels if hasattr(layer[-1], "conv3") else layer[-1].conv2.out_channels
            for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        )
        stem = 1 if is_small_stem(resnet) else 4
        self.strides: tuple[int, ...] = (stem, stem * 2, stem * 4, stem * 8)

    def forward(self, x: Tensor) -> list[Tensor]:
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        c2 = r.layer1(x)
        c3 = r.layer2(c2)
        c4 = r.layer3(c3)
        c5 = r.layer4(c4)
        return [c2, c3, c4, c5]


def pooled(c5: Tensor) -> Tensor:
    """Global average pool: [N,C,h,w] -> [N,C] (what ResNet feeds its fc)."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(c5, 1), 1)


def to_backbone_layout(x: Tensor, resnet: nn.Module) -> Tensor:
    """`x` [N,3,H,W] in channels_last when the backbone's conv1 weight is (else unchanged)."""
    if resnet.conv1.weight.is_contiguous(memory_format=torch.channels_last) and resnet.conv1.weight.shape[-1] > 1:
        return x.contiguous(memory_format=torch.channels_last)
    return x
