"""The Python API of training: train in this process, load a trained backbone.

    from synthssl.train import train, load_backbone

    run = train("synthetic_contrast", data={"shards": ["data/shards"], "photos": "photos/"}, train__steps=100)
    model = load_backbone(run)          # torchvision ResNet (or timm model), eval mode, CPU
    features = model(model.normalization(images))   # images: float [B, 3, H, W], RGB in [0, 1]

``config`` is a `TrainingConfig`, a nested dict, a YAML file or a shipped config name
(``"synthetic_contrast"``, ``"demo"``), or None for the defaults (the recommended recipe of
``synthetic_contrast``); overrides follow (`synthssl.core.config_input`): a list of
``"key=value"`` strings or a ``{dotted key: value}`` dict, then keyword arguments, where a
double underscore stands for the dot (``train__steps=100``) and a dict value merges into its
section (``data={"shards": [...]}``). Bad keys or values raise `ConfigError` naming the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from synthssl.core.config import ConfigError
from synthssl.core.config_input import Overrides, config_tree
from synthssl.train.config import SHIPPED_CONFIGS, TrainingConfig, parse_config

__all__ = ["Normalization", "resolve_training_config", "train", "load_backbone"]


def resolve_training_config(config: Any = None, overrides: Overrides = None, **keywords: Any) -> TrainingConfig:
    """The checked `TrainingConfig` of ``config`` with ``overrides`` and ``keywords`` (see the module docstring)."""
    tree, source = config_tree(config, SHIPPED_CONFIGS, overrides, keywords)
    try:
        return parse_config(tree)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (config: {source or 'the defaults'})") from None


def train(
    config: Any = None,
    overrides: Overrides = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    **keywords: Any,
) -> Path:
    """Train ``config`` in this process, as ``train-ssl`` does; returns the run folder (``train.out``).

    The folder holds what the command writes: ``config.yaml``, ``metrics.jsonl``,
    ``checkpoint.pt`` and, with ``train.export`` (the default), ``export/`` (`load_backbone`
    reads it). A folder that already holds a run is refused (`ConfigError`) unless ``resume``
    (continue it from its checkpoint) or ``overwrite`` (move it aside to
    ``<out>.replaced-<time>``, then start again). While it trains, the run holds the folder's
    lock: a second start there raises `synthssl.core.folder_lock.FolderInUseError` naming the
    holder. One process: for several GPUs use ``torchrun ... -m synthssl.train.cli`` (docs/train.md).
    """
    from synthssl.train.distributed import world_size
    from synthssl.train.run_folder import RunFolderClaim
    from synthssl.train.trainer import Trainer, prepare

    cfg = resolve_training_config(config, overrides, **keywords)
    with RunFolderClaim(cfg.train.out, resume=resume, overwrite=overwrite) as claim:
        prepared = prepare(cfg, world_size(), resume=resume)
        claim.replace_old_run()
        trainer = Trainer(cfg, resume=resume, prepared=prepared, argv=None)
        return Path(trainer.run())


@dataclass(frozen=True)
class Normalization:
    """The input normalisation a backbone was trained with: RGB in [0, 1] -> (x - mean) / std per channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, images: Tensor) -> Tensor:
        """float [B, 3, H, W] (or [3, H, W]) RGB in [0, 1] -> the normalised tensor the backbone expects."""
        shape = (3, 1, 1)
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(shape)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(shape)
        return (images - mean) / std


def _export_folder(path: Path) -> Path:
    """The export folder of ``path``: an export folder, its backbone.pt, or a run folder holding ``export/``."""
    if path.is_file():
        return path.parent
    if (path / "backbone.pt").is_file():
        return path
    if (path / "export" / "backbone.pt").is_file():
        return path / "export"
    raise FileNotFoundError(
        f"{path}: no exported backbone here; expected a run folder with export/backbone.pt "
        f"(train.export=true, the default) or an export folder with backbone.pt"
    )


def load_backbone(path: str | os.PathLike, features: bool = True) -> nn.Module:
    """A trained backbone from an export or a run folder, ready to use: weights loaded strictly, eval mode, CPU.

    Returns the plain model of its family: a ``torchvision.models.ResNet`` (``resnet18``,
    ``resnet34``, ``resnet50``; with the small stem when it was trained with one) or the timm
    ``features_only`` model that ``backbone.json["timm"]`` describes. With ``features=True``
    (the default) a ResNet's ``fc`` is replaced by ``nn.Identity()``, so ``model(x)`` gives the
    pooled features [B, C5] (512 for ResNet-18/34, 2048 for ResNet-50): the ``fc`` weights in
    ``backbone.pt`` are torchvision's random initialisation, there only so that the file loads
    with ``strict=True``, not a trained classifier. ``features=False`` keeps that ``fc``. A timm
    model returns its list of feature maps either way.

    Attributes added: ``model.normalization`` (`Normalization`: apply it to RGB in [0, 1]
    before the model) and ``model.export_meta`` (the export's ``backbone.json`` as a dict:
    arch, image_size, method, steps, heads).
    """
    from synthssl.train.export import load_backbone as load_export

    trunk, meta = load_export(_export_folder(Path(path)))
    if features and isinstance(getattr(trunk, "fc", None), nn.Linear) and not meta["arch"].startswith("timm:"):
        trunk.fc = nn.Identity()
    trunk.normalization = Normalization(_three(meta["mean"], "mean"), _three(meta["std"], "std"))
    trunk.export_meta = meta
    return trunk.eval()


def _three(values: Sequence[float], key: str) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ValueError(f"backbone.json: {key}: expected 3 numbers (R, G, B), got {list(values)}")
    return (float(values[0]), float(values[1]), float(values[2]))
