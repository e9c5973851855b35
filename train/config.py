"""Typed training configuration: YAML file + dotted command-line overrides.

A run is configured by `TrainingConfig` (sections ``data``, ``augment``, ``model``,
``method``, ``optim``, ``train``, ``log``, ``eval``). ``method`` is a mapping
``{name: ..., <fields of that method's Config dataclass>}`` validated against the
method's own dataclass (`synthssl.train.methods.registry`).

    cfg = load_config("demo.yaml", ["optim.lr=0.1", "data.shards=[out/a,out/b]"])

Override values are parsed as YAML (``0.1`` -> float, ``true`` -> bool, ``[a, b]`` ->
list, ``null`` -> None). Every error is a `ConfigError` that names the dotted key
and says what was expected.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from synthssl.dataset.yaml_numbers import safe_load


class ConfigError(ValueError):
    """A bad configuration: the message names the key and the fix."""


def opt(default: Any, help: str) -> Any:
    """A dataclass field with a default and a help text (shown by ``train-ssl --help``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class DataConfig:
    """``data:`` where view pairs and real photos come from, and batch sizes."""
    shards: list[str] = opt([], "shard directories and/or .h5 files (any number); [] with photo_pairs")
    val_fraction: float = opt(0.0, "fraction of scenes held out (by scene-id hash) from training")
    photos: Optional[str] = opt(None, "folder tree of real photos (jpg/png/webp), for adaptation or photo_pairs")
    photo_pairs: bool = opt(False, "train on two random crops of the same photo instead of rendered pairs")
    photo_base_size: int = opt(0, "side of the square the loader cuts from each photo (0 = 2 x image_size)")
    photo_cache_mb: float = opt(256.0, "decoded photos kept in memory per loader process (MB)")
    image_size: int = opt(64, "training resolution in pixels (square); <= the shards' height and width")
    batch_size: int = opt(32, "global batch of view pairs per step (divided over ranks)")
    real_batch_size: int = opt(0, "global batch of real photos per step for adaptation (0 = batch_size)")
    workers: int = opt(2, "DataLoader workers per rank for view pairs (the real-photo stream gets a quarter, >= 1); "
                          "0 = load in the main process")
    prefetch_factor: int = opt(4, "batches prefetched per worker")


@dataclass
class AugmentConfig:
    """``augment:`` on-device augmentation (`synthssl.train.data.augment`)."""
    crop_scale: list[float] = opt([0.4, 1.0], "random resized crop: [min, max] fraction of the image area")
    crop_ratio: list[float] = opt([0.75, 1.3333333], "random resized crop: [min, max] aspect ratio w/h")
    flip_p: float = opt(0.5, "probability of a horizontal flip (per view)")
    jitter_p: float = opt(0.8, "probability of colour jitter (rgb only)")
    brightness: float = opt(0.4, "colour jitter: brightness strength")
    contrast: float = opt(0.4, "colour jitter: contrast strength")
    saturation: float = opt(0.4, "colour jitter: saturation strength")
    hue: float = opt(0.1, "colour jitter: hue strength (fraction of a full turn)")
    grayscale_p: float = opt(0.2, "probability of converting rgb to grayscale")
    blur_p: float = opt(0.5, "probability of Gaussian blur (rgb only)")
    blur_sigma: list[float] = opt([0.1, 2.0], "Gaussian blur sigma range, in output pixels at 224 px (scaled with image_size)")


#: ``model.arch`` values of the torchvision family (`synthssl.train.models.backbone.ARCHS`).
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50")


@dataclass
class ModelConfig:
    """``model:`` the backbone."""
    arch: str = opt("resnet18", "backbone: resnet18 | resnet34 | resnet50 (torchvision), or timm:NAME for a timm "
                                "CNN in features_only mode, random init (e.g. timm:convnext_atto, timm:resnet18d)")
    small_stem: bool = opt(False, "CIFAR-style stem (conv1 stride 1, no max-pool) for 32-96 px inputs "
                                  "(torchvision ResNets only)")
    channels_last: bool = opt(True, "run the model in channels_last memory format")
    sync_bn: bool = opt(True, "with several ranks, BatchNorm statistics over the global batch")

    def __post_init__(self) -> None:
        timm = isinstance(self.arch, str) and self.arch.startswith("timm:")
        if not timm and self.arch not in TORCHVISION_ARCHS:
            raise ConfigError(f"model.arch: expected one of {list(TORCHVISION_ARCHS)} or timm:NAME, got {self.arch!r}")
        if timm and not self.arch[len("timm:"):]:
            raise ConfigError("model.arch: timm: needs a model name, e.g. timm:convnext_atto")
        if timm and self.small_stem:
            raise ConfigError(f"model.small_stem: only torchvision ResNets have the small stem, not {self.arch}; "
                              f"set model.small_stem=false")


@dataclass
class OptimConfig:
    """``optim:`` main optimiser and learning-rate schedule."""
    name: Literal["adamw", "sgd", "lars"] = opt("adamw", "optimiser")
    lr: float = opt(1e-3, "peak learning rate (after warm-up)")
    weight_decay: float = opt(1e-4, "weight decay (not applied to biases and norm parameters)")
    momentum: float = opt(0.9, "momentum (sgd, lars)")
    betas: list[float] = opt([0.9, 0.999], "AdamW betas")
    trust_coefficient: float = opt(0.001, "LARS trust coefficient")
    warmup_steps: int = opt(0, "linear warm-up steps from 0 to lr")
    min_lr_ratio: float = opt(0.0, "cosine schedule floor as a fraction of lr")
    grad_clip: float = opt(0.0, "clip the global gradient norm of the main parameters (0 = off)")


@dataclass
class TrainConfig:
    """``train:`` length, output, device, precision, checkpoints."""
    steps: int = opt(1000, "optimiser steps")
    out: str = opt("runs/default", "run directory (config, metrics, checkpoint, export)")
    seed: int = opt(0, "seed; every step re-seeds from (seed, rank, step)")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = opt(
        "auto", "auto = bf16 autocast on GPUs that support it, fp16 + loss scaling on others, fp32 on CPU")
    compile: bool = opt(False, "torch.compile the method")
    checkpoint_every: int = opt(500, "write <out>/checkpoint.pt every N steps (and at the end); 0 = end only")
    export: bool = opt(True, "export the backbone to <out>/export at the end")
    divergence_factor: float = opt(1000.0, "stop (exit 2) when a loss term exceeds this many times its median over "
                                           "the first divergence_window logged steps (0 = only non-finite losses stop)")
    divergence_window: int = opt(5, "logged steps whose median is the reference of divergence_factor")


@dataclass
class LogConfig:
    """``log:`` metrics.jsonl / TensorBoard / progress bar."""
    every: int = opt(10, "log metrics every N steps")
    tensorboard: bool = opt(True, "write TensorBoard events to <out>/tb")
    progress: bool = opt(True, "show a tqdm bar on a terminal; off a terminal, plain lines at log.every")
    wandb: bool = opt(False, "also log to Weights & Biases (needs the wandb package; project log.wandb_project)")
    wandb_project: str = opt("synthssl", "W&B project of log.wandb")


@dataclass
class EvalConfig:
    """``eval:`` online k-NN monitor during training."""
    every_steps: int = opt(0, "run the online k-NN every N steps (0 = off)")
    online_knn: Optional[dict] = opt(None, "section passed to synthssl.train.eval.online.OnlineKNN.from_config")


@dataclass
class TrainingConfig:
    """The whole ``train-ssl`` configuration (one section per field)."""
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: dict = field(default_factory=lambda: {"name": "synthetic_contrast"},
                         metadata={"help": "method name plus that method's options"})
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# --------------------------------------------------------------------------- parsing

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in typing.get_args(tp))}]"
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against type `tp` (int -> float allowed), returning the typed value."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: expected one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}: expected null, got {value!r}")
        return None
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list ({_type_name(tp)}), got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types."""
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    where = prefix or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in data:
        if k not in names:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{k}: unknown option; "
                              f"valid options of {where}: {', '.join(names)}")
    kwargs = {k: coerce(v, hints[k], f"{prefix + '.' if prefix else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) -> plain dict/list values, for saving and printing."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def apply_override(tree: dict, item: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as YAML) to a nested dict, in place."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected dotted.key=value (e.g. optim.lr=0.1)")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r}: empty key segment")
    try:
        value = safe_load(raw) if raw.strip() != "" else ""  # 1e-6 is a number
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key}: cannot parse value {raw!r} as YAML ({exc})") from exc
    node = tree
    for i, p in enumerate(parts[:-1]):
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {'.'.join(parts[:i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def load_raw(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """YAML file (or {}) with overrides applied, as a plain dict."""
    tree: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            tree = safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(tree, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    for item in overrides:
        apply_override(tree, item)
    return tree


def parse_config(tree: dict) -> TrainingConfig:
    """Typed config from a plain dict (method section checked by `resolve_method_config`)."""
    tree = {k: v for k, v in tree.items() if k != "provenance"}  # what produced a run's config.yaml
    cfg = from_dict(TrainingConfig, tree)
    if "name" not in cfg.method:
        raise ConfigError("method.name: missing; set e.g. method.name=synthetic_contrast")
    return cfg


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainingConfig:
    """Load, override and type-check a config (see module docstring)."""
    return parse_config(load_raw(path, overrides))


def resolve_method_config(cfg: TrainingConfig) -> tuple[type, Any]:
    """(method class, its typed Config) for ``cfg.method``; errors name ``method.<key>``."""
    from synthssl.train.methods.registry import method_class

    section = dict(cfg.method)
    name = section.pop("name")
    try:
        cls = method_class(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return cls, from_dict(cls.Config, section, "method")


def help_lines(cls: type = TrainingConfig, prefix: str = "") -> list[str]:
    """One line per option: dotted key, type, default, help text."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if f.name == "method" and cls is TrainingConfig:
            continue  # listed per method by the CLI (`train-ssl --help`)
        if dataclasses.is_dataclass(tp):
            lines.append(f"[{key}]")
            lines.extend(help_lines(tp, key + "."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        lines.append(f"  {key} ({_type_name(tp)}, default {default!r}): {f.metadata.get('help', '')}")
    return lines
