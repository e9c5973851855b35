"""Typed training configuration: YAML file (with ``base:`` includes) + ``key=value`` overrides.

A run is configured by `TrainingConfig` (sections ``data``, ``augment``, ``model``,
``method``, ``optim``, ``train``, ``log``, ``eval``). ``method`` holds one method's
config dataclass, chosen by ``method.name`` (`synthssl.train.methods.registry`); a
method's options may nest (``method.synthetic.property_weight``).

    cfg = load_config("demo", ["optim.lr=0.1", "data.shards=[out/a,out/b]"])

The file is a path or a shipped config name (``simclr``, ``configs/simclr.yaml``).
Override values are parsed as YAML (``0.1`` -> float, ``true`` -> bool, ``[a, b]`` ->
list, ``null`` -> None). Built and checked by the package's one engine,
`synthssl.core.config`: every error is a `ConfigError` naming the dotted key and what
was expected; each section's ``check()`` holds its own rules. Only checks that need the
world (number of ranks, shard contents) are left to `synthssl.train.preflight.prepare`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from synthssl.core.config import ConfigError, apply_override, build, load_yaml, need, opt, to_dict, variant

__all__ = [
    "ConfigError",
    "DataConfig",
    "AugmentConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "LogConfig",
    "OnlineEvalConfig",
    "TrainingConfig",
    "SHIPPED_CONFIGS",
    "load_raw",
    "parse_config",
    "load_config",
    "to_dict",
]

SHIPPED_CONFIGS = Path(__file__).with_name("configs")
"""training configs shipped with the package, named without a path (``train-ssl simclr``)."""


def _range(values: Sequence[float], low: float, high: Optional[float] = None) -> bool:
    """[min, max] with low < min <= max (<= high)."""
    return len(values) == 2 and low < values[0] <= values[1] and (high is None or values[1] <= high)


@dataclass
class DataConfig:
    """``data:`` where view pairs and real photos come from, and batch sizes."""

    shards: list[str] = opt([], "shard directories and/or .h5 files (any number); [] with photo_pairs")
    allow_missing_shards: bool = opt(
        False,
        "train on what is left when a folder's manifest.json lists shards that are gone (the skipped "
        "scenes are reported); false: refuse, naming the shard",
    )
    val_fraction: float = opt(0.0, "fraction of scenes held out (by scene-id hash) from training")
    photos: Optional[str] = opt(None, "folder tree of real photos (jpg/png/webp), for adaptation or photo_pairs")
    photo_pairs: bool = opt(False, "train on two random crops of the same photo instead of rendered pairs")
    photo_base_size: int = opt(0, "side of the square the loader cuts from each photo (0 = 2 x image_size)")
    photo_cache_mb: float = opt(256.0, "decoded photos kept in memory per loader process (MB)")
    image_size: int = opt(64, "training resolution in pixels (square); <= the shards' height and width")
    batch_size: int = opt(32, "global batch of view pairs per step (divided over ranks)")
    real_batch_size: int = opt(0, "global batch of real photos per step for adaptation (0 = batch_size)")
    workers: int = opt(
        2,
        "DataLoader workers per rank for view pairs (the real-photo stream gets a quarter, >= 1); "
        "0 = load in the main process",
    )
    prefetch_factor: int = opt(4, "batches prefetched per worker")
    stream: Optional[str] = opt(
        None,
        "train on scenes rendered on the fly instead of data.shards: a render config (a shipped name "
        "such as demo, or a YAML file); scene i of its seed, never repeated (docs/train.md)",
    )
    stream_set: list[str] = opt([], "key=value overrides of the data.stream render config, e.g. [size=128]")
    stream_workers: int = opt(2, "render worker processes per rank for data.stream")

    def check(self) -> None:
        need(self.batch_size >= 2, "batch_size", ">= 2 view pairs (contrastive negatives and BatchNorm need a batch)")
        need(self.real_batch_size >= 0, "real_batch_size", ">= 0 (0 = batch_size)")
        need(self.image_size >= 16, "image_size", ">= 16 pixels (32-96 with model.small_stem)")
        need(0.0 <= self.val_fraction < 1.0, "val_fraction", "a fraction in [0, 1)")
        need(self.workers >= 0, "workers", ">= 0")
        need(self.prefetch_factor >= 1, "prefetch_factor", ">= 1")
        need(self.photo_base_size >= 0, "photo_base_size", ">= 0 (0 = 2 x image_size)")
        need(self.stream_workers >= 1, "stream_workers", ">= 1")
        need(
            all(isinstance(item, str) and "=" in item for item in self.stream_set),
            "stream_set",
            f"a list of key=value render overrides, e.g. [size=128], got {self.stream_set}",
        )
        need(
            self.stream is not None or not self.stream_set,
            "stream_set",
            "[] without data.stream (it overrides the data.stream render config)",
        )
        if self.stream is not None:
            need(bool(self.stream.strip()), "stream", "a render config name or YAML file, or null")
            for key, clash, unset in (
                ("shards", bool(self.shards), "data.shards=[]"),
                ("photo_pairs", self.photo_pairs, "data.photo_pairs=false"),
            ):
                need(
                    not clash,
                    "stream",
                    f"no data.{key} with it ({unset}): data.stream renders the training scenes itself; "
                    f"or leave data.stream unset to train on data.{key}",
                )
            need(
                self.val_fraction == 0.0,
                "val_fraction",
                "0 with data.stream (streamed scenes are never held out; hold out a render with another seed)",
            )
        need(
            not (self.photo_pairs and self.shards),
            "shards",
            "[] with data.photo_pairs=true, which trains on "
            "photos only (or data.photo_pairs=false to train on the shards)",
        )


@dataclass
class AugmentConfig:
    """``augment:`` on-device augmentation (`synthssl.train.data.augment`)."""

    crop_scale: list[float] = opt([0.2, 1.0], "random resized crop: [min, max] fraction of the image area")
    crop_ratio: list[float] = opt([0.75, 1.3333333], "random resized crop: [min, max] aspect ratio w/h")
    flip_p: float = opt(0.5, "probability of a horizontal flip (per view)")
    jitter_p: float = opt(0.8, "probability of colour jitter (rgb only)")
    brightness: float = opt(0.4, "colour jitter: brightness strength")
    contrast: float = opt(0.4, "colour jitter: contrast strength")
    saturation: float = opt(0.4, "colour jitter: saturation strength")
    hue: float = opt(0.1, "colour jitter: hue strength (fraction of a full turn)")
    grayscale_p: float = opt(0.2, "probability of converting rgb to grayscale")
    blur_p: float = opt(0.5, "probability of Gaussian blur (rgb only)")
    blur_sigma: list[float] = opt(
        [0.1, 2.0], "Gaussian blur sigma range, in output pixels at 224 px (scaled with image_size)"
    )

    def check(self) -> None:
        need(
            _range(self.crop_scale, 0.0, 1.0),
            "crop_scale",
            f"[min, max] with 0 < min <= max <= 1, got {self.crop_scale}",
        )
        need(_range(self.crop_ratio, 0.0), "crop_ratio", f"[min, max] with 0 < min <= max, got {self.crop_ratio}")
        need(_range(self.blur_sigma, 0.0), "blur_sigma", f"[min, max] with 0 < min <= max, got {self.blur_sigma}")
        for key in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            need(0.0 <= getattr(self, key) <= 1.0, key, "a probability in [0, 1]")


#: ``model.arch`` values of the torchvision family (`synthssl.train.models.backbone.ARCHS`).
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50")


@dataclass
class ModelConfig:
    """``model:`` the backbone."""

    arch: str = opt(
        "resnet18",
        "backbone: resnet18 | resnet34 | resnet50 (torchvision), or timm:NAME for a timm "
        "CNN in features_only mode, random init (e.g. timm:convnext_atto, timm:resnet18d)",
    )
    small_stem: bool = opt(
        False, "CIFAR-style stem (conv1 stride 1, no max-pool) for 32-96 px inputs (torchvision ResNets only)"
    )
    channels_last: bool = opt(True, "run the model in channels_last memory format")
    sync_bn: bool = opt(True, "with several ranks, BatchNorm statistics over the global batch")

    def __post_init__(self) -> None:
        timm = isinstance(self.arch, str) and self.arch.startswith("timm:")
        if not timm and self.arch not in TORCHVISION_ARCHS:
            raise ConfigError(f"model.arch: expected one of {list(TORCHVISION_ARCHS)} or timm:NAME, got {self.arch!r}")
        if timm and not self.arch[len("timm:") :]:
            raise ConfigError("model.arch: timm: needs a model name, e.g. timm:convnext_atto")
        if timm and self.small_stem:
            raise ConfigError(
                f"model.small_stem: only torchvision ResNets have the small stem, not {self.arch}; "
                f"set model.small_stem=false"
            )


@dataclass
class OptimConfig:
    """``optim:`` main optimiser and learning-rate schedule."""

    name: Literal["adamw", "sgd", "lars"] = opt("lars", "optimiser (the recipe: lars; docs/train.md)")
    lr: float = opt(1.2, "peak learning rate (after warm-up); the recipe's 1.2 is for lars")
    weight_decay: float = opt(1e-6, "weight decay (not applied to biases and norm parameters)")
    momentum: float = opt(0.9, "momentum (sgd, lars)")
    betas: list[float] = opt([0.9, 0.999], "AdamW betas")
    trust_coefficient: float = opt(0.001, "LARS trust coefficient")
    warmup_steps: int = opt(0, "linear warm-up steps from 0 to lr")
    min_lr_ratio: float = opt(0.0, "cosine schedule floor as a fraction of lr")
    grad_clip: float = opt(0.0, "clip the global gradient norm of the main parameters (0 = off)")

    def check(self) -> None:
        need(self.lr > 0, "lr", "> 0")
        need(self.weight_decay >= 0, "weight_decay", ">= 0")
        need(len(self.betas) == 2, "betas", "two numbers")
        need(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "a fraction in [0, 1]")
        need(self.warmup_steps >= 0, "warmup_steps", ">= 0")
        need(self.grad_clip >= 0, "grad_clip", ">= 0 (0 = off)")


@dataclass
class TrainConfig:
    """``train:`` length, output, device, precision, checkpoints."""

    steps: int = opt(1000, "optimiser steps")
    out: str = opt("runs/default", "run directory (config, metrics, checkpoint, export)")
    seed: int = opt(0, "seed; every step re-seeds from (seed, rank, step)")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = opt(
        "auto", "auto = bf16 autocast on GPUs that support it, fp16 + loss scaling on others, fp32 on CPU"
    )
    compile: bool = opt(False, "torch.compile the method")
    checkpoint_every: int = opt(500, "write <out>/checkpoint.pt every N steps (and at the end); 0 = end only")
    export: bool = opt(True, "export the backbone to <out>/export at the end")
    ema_decay: float = opt(
        0.0,
        "export an exponential moving average of the encoder and property heads "
        "(decay per step, warmed up; train/momentum/weight_average.py) instead of the "
        "last weights; 0 = off",
    )
    divergence_factor: float = opt(
        1000.0,
        "stop (exit 2) when a loss term exceeds this many times its median over "
        "the first divergence_window logged steps (0 = only non-finite losses stop)",
    )
    divergence_window: int = opt(5, "logged steps whose median is the reference of divergence_factor")

    def check(self) -> None:
        need(self.steps >= 1, "steps", ">= 1")
        need(self.checkpoint_every >= 0, "checkpoint_every", ">= 0 (0 = at the end only)")
        need(self.divergence_factor >= 0, "divergence_factor", ">= 0 (0 = only non-finite losses stop)")
        need(self.divergence_window >= 1, "divergence_window", ">= 1")
        need(0.0 <= self.ema_decay < 1.0, "ema_decay", "a decay in [0, 1) (0 = off)")


@dataclass
class LogConfig:
    """``log:`` metrics.jsonl / TensorBoard / progress bar."""

    every: int = opt(10, "log metrics every N steps")
    tensorboard: bool = opt(True, "write TensorBoard events to <out>/tb")
    progress: bool = opt(True, "show a tqdm bar on a terminal; off a terminal, plain lines at log.every")
    wandb: bool = opt(False, "also log to Weights & Biases (needs the wandb package; project log.wandb_project)")
    wandb_project: str = opt("synthssl", "W&B project of log.wandb")

    def check(self) -> None:
        need(self.every >= 1, "every", ">= 1")


@dataclass
class OnlineEvalConfig:
    """``eval:`` online k-NN monitor during training (``train-ssl eval`` has its own config)."""

    every_steps: int = opt(0, "run the online k-NN every N steps (0 = off)")
    online_knn: Optional[dict] = opt(None, "section passed to synthssl.train.eval.online.OnlineKNN.from_config")

    def check(self) -> None:
        if self.online_knn is not None:
            need(self.every_steps >= 1, "every_steps", ">= 1 to run the configured eval.online_knn (or remove it)")
        elif self.every_steps > 0:
            need(False, "online_knn", "a section, since eval.every_steps is set")


@dataclass
class TrainingConfig:
    """The whole ``train-ssl`` configuration (one section per field)."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: Any = variant(
        lambda: _method_config("synthetic_contrast")(),
        lambda name: _method_config(name),
        lambda: _method_names(),
        "the method and its options",
    )
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: OnlineEvalConfig = field(default_factory=OnlineEvalConfig)


def _method_config(name: str) -> type:
    """The config dataclass of method ``name`` (ValueError naming the choices)."""
    from synthssl.train.methods.registry import method_class

    return method_class(name).Config


def _method_names() -> list[str]:
    from synthssl.train.methods.registry import METHODS

    return list(METHODS)


def load_raw(path: str | Path | None, overrides: Sequence[str] = ()) -> dict:
    """YAML file (a path or a shipped config name, with its ``base:`` files; or {}) with overrides applied."""
    tree: dict = load_yaml(path, SHIPPED_CONFIGS) if path is not None else {}
    for item in overrides:
        apply_override(tree, item)
    return tree


def parse_config(tree: dict) -> TrainingConfig:
    """The checked config from a plain dict (a run's saved config.yaml too: its ``provenance`` is ignored)."""
    return build(TrainingConfig, {k: v for k, v in tree.items() if k != "provenance"})


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainingConfig:
    """Load, override, build and check a config (see the module docstring)."""
    return parse_config(load_raw(path, overrides))
