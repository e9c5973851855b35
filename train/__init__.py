"""synthssl.train: self-supervised training on rendered shards, evaluation, prediction and export.

The Python API (docs/api.md), imported on first use so that ``import synthssl.train`` stays light:
``train(config, ...)`` (a run in this process; returns its folder), ``load_backbone(path)`` (a
trained torchvision/timm backbone with its input normalisation), ``SceneDataset`` (a
``torch.utils.data.Dataset`` over render folders), ``load_config`` and ``TrainingConfig``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it.
_EXPORTS = {
    "train": "api",
    "load_backbone": "api",
    "Normalization": "api",
    "resolve_training_config": "api",
    "SceneDataset": "data.scenes",
    "TrainingConfig": "config",
    "load_config": "config",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
