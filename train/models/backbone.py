"""torchvision ResNet backbones, the default family (a shared contract; keep stable).

`build_backbone(arch, small_stem)` returns a plain ``torchvision.models.ResNet`` (random
init). ``small_stem=True`` is the CIFAR-style stem for 32-96 px inputs: conv1 keeps its
7x7 weight shape but uses stride 1, and the max-pool becomes ``nn.Identity``; the
parameter names and shapes are unchanged, so the state_dict still loads with
``strict=True`` into ``torchvision.models.resnet18()`` / ``resnet50()``.

`resnet_levels(resnet, x)` runs the ResNet trunk and returns [c2, c3, c4, c5]
(outputs of layer1..layer4). With the standard stem their strides are 4, 8, 16, 32;
with the small stem 1, 2, 4, 8 (`resnet_strides`). Channels: resnet18 (64, 128, 256,
512), resnet50 (256, 512, 1024, 2048) (`resnet_channels`). Methods do not call these
directly: `synthssl.train.models.encoder.Encoder` wraps a trunk of either family
(this one or `timm_backbone`) behind one interface.
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


#: Index of each named level in an `Encoder`'s output list [c2, c3, c4, c5].
LEVEL_INDEX = {"c2": 0, "c3": 1, "c4": 2, "c5": 3}


def resnet_channels(resnet: torchvision.models.ResNet) -> tuple[int, int, int, int]:
    """Channels of [c2, c3, c4, c5]: (64, 128, 256, 512) for resnet18/34, (256, 512, 1024, 2048) for resnet50."""
    return tuple(
        layer[-1].conv3.out_channels if hasattr(layer[-1], "conv3") else layer[-1].conv2.out_channels
        for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
    )


def resnet_strides(resnet: torchvision.models.ResNet) -> tuple[int, int, int, int]:
    """Strides (input pixels per location) of [c2, c3, c4, c5]: (4, 8, 16, 32), or (1, 2, 4, 8) with the small stem."""
    stem = 1 if is_small_stem(resnet) else 4
    return (stem, stem * 2, stem * 4, stem * 8)


def resnet_levels(resnet: torchvision.models.ResNet, x: Tensor) -> list[Tensor]:
    """[c2, c3, c4, c5] (outputs of layer1..layer4) of images x float [N,3,H,W]; fc is not run."""
    r = resnet
    x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
    c2 = r.layer1(x)
    c3 = r.layer2(c2)
    c4 = r.layer3(c3)
    c5 = r.layer4(c4)
    return [c2, c3, c4, c5]


def pooled(c5: Tensor) -> Tensor:
    """Global average pool: [N,C,h,w] -> [N,C] (what ResNet feeds its fc)."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(c5, 1), 1)
