"""timm backbones in ``features_only`` mode (``model.arch: timm:NAME``).

`build_timm_backbone(name)` returns ``timm.create_model(name, pretrained=False,
features_only=True, out_indices=...)`` keeping the model's *last four* feature levels,
which play the part of ResNet's [c2, c3, c4, c5] (for CNNs such as ConvNeXt, RegNet,
EfficientNet or ResNet-D their strides are 4, 8, 16, 32). Its ``feature_info`` gives
each level's channels and stride (`timm_channels`, `timm_strides`). Random init: no
weights are downloaded. The small stem (``model.small_stem``) is a torchvision-ResNet
option and is refused here. ViTs are not supported (their tokens are not maps).

An export of such a trunk is its plain ``state_dict``; `timm_load_spec` is what
``backbone.json["timm"]`` records so that loaders rebuild the same module:
``timm.create_model(name, pretrained=False, features_only=True, out_indices=out_indices)``.
"""

from __future__ import annotations

import torch
from torch import nn

#: ``model.arch`` values of this family start with this prefix, e.g. ``timm:convnext_atto``.
TIMM_PREFIX = "timm:"
LEVELS = 4


def is_timm_arch(arch: str) -> bool:
    """True for ``timm:NAME`` architecture strings."""
    return isinstance(arch, str) and arch.startswith(TIMM_PREFIX)


def timm_name(arch: str) -> str:
    """``timm:convnext_atto`` -> ``convnext_atto``."""
    return arch[len(TIMM_PREFIX) :]


def _import_timm():
    try:
        import timm
    except ImportError:  # pragma: no cover - timm is a dependency; the message covers broken installs
        raise ValueError("model.arch: timm backbones need the timm package (pip install 'timm>=1.0')") from None
    return timm


def build_timm_backbone(name: str, small_stem: bool = False, out_indices: tuple[int, ...] | None = None) -> nn.Module:
    """A randomly initialised timm ``features_only`` model of the last four levels (see the module docstring).

    out_indices: the feature levels to keep (from backbone.json when loading an export);
    None = the model's last four. ValueError naming ``model.arch`` for an unknown name, a
    model without four feature levels or whose levels do not get coarser (ViTs), or
    ``small_stem``.
    """
    if small_stem:
        raise ValueError(
            f"model.small_stem: only torchvision ResNets have the small stem, not timm:{name}; "
            f"set model.small_stem=false"
        )
    timm = _import_timm()
    if out_indices is None:
        try:
            with torch.device("meta"):  # only to read the levels: no memory, no random numbers drawn
                probe = timm.create_model(name, pretrained=False, features_only=True)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"model.arch: timm:{name} cannot be built as a feature extractor ({first}); "
                f"give a timm CNN name, e.g. timm:resnet18d or timm:convnext_atto"
            ) from None
        levels = len(probe.feature_info)
        if levels < LEVELS:
            raise ValueError(f"model.arch: timm:{name} has {levels} feature levels; {LEVELS} are needed")
        out_indices = tuple(probe.feature_info.out_indices[-LEVELS:])
        strides = [int(r) for r in probe.feature_info.reduction()[-LEVELS:]]
        if any(b <= a for a, b in zip(strides, strides[1:])):
            raise ValueError(
                f"model.arch: timm:{name}'s feature levels end with strides {strides}, not "
                f"increasing (a ViT?); only CNNs with four strided levels are supported"
            )
    try:
        return timm.create_model(name, pretrained=False, features_only=True, out_indices=tuple(out_indices))
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"model.arch: timm:{name} with out_indices {list(out_indices)} cannot be built ({first})"
        ) from None


def is_timm_trunk(module: nn.Module) -> bool:
    """True for a timm ``features_only`` model (it carries ``feature_info``)."""
    return hasattr(module, "feature_info") and hasattr(module.feature_info, "channels")


def timm_channels(trunk: nn.Module) -> tuple[int, ...]:
    """Channels of each kept level."""
    return tuple(int(c) for c in trunk.feature_info.channels())


def timm_strides(trunk: nn.Module) -> tuple[int, ...]:
    """Stride (input pixels per location) of each kept level."""
    return tuple(int(r) for r in trunk.feature_info.reduction())


def timm_load_spec(name: str, trunk: nn.Module) -> dict:
    """What backbone.json["timm"] records: ``{"name", "features_only": true, "out_indices", "channels",
    "strides", "timm_version"}``."""
    timm = _import_timm()
    return {
        "name": name,
        "features_only": True,
        "out_indices": [int(i) for i in trunk.feature_info.out_indices],
        "channels": list(timm_channels(trunk)),
        "strides": list(timm_strides(trunk)),
        "timm_version": timm.__version__,
    }
