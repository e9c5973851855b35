"""Settings of ``train-ssl eval [CONFIG.yaml] key=value ...`` (every key optional but ``backbone`` and ``out``).

Top-level keys say what is evaluated and where the report goes (:class:`EvalConfig`);
sections: ``image`` (:class:`~synthssl.train.eval.image_probe.ImageProbeConfig`, with a
nested ``linear`` section), ``dense`` (:class:`~synthssl.train.eval.dense_probe.DenseProbeConfig`)
and ``report`` (:class:`ReportConfig`). Built and checked by the package's one engine
(`synthssl.core.config`): unknown keys and wrong types are errors naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from synthssl.core.config import ConfigError, apply_override, build, load_yaml, need
from synthssl.train.config import SHIPPED_CONFIGS
from synthssl.train.eval.dense_probe import DenseProbeConfig
from synthssl.train.eval.image_probe import ImageProbeConfig

__all__ = ["ReportConfig", "EvalConfig", "load_eval_config"]


@dataclass(frozen=True)
class ReportConfig:
    """Figures of the report."""

    scenes: int = 4
    """held-out views in the dense example grids."""
    photos: int = 3
    """real photos (first files, sorted, under photo_dir) in the dense example grids."""
    photo_dir: str | None = "/usr/share/backgrounds/mate"
    """folder of those photos."""
    cell: int = 128
    """pixels per grid tile."""
    embedding_points: int = 1000
    """test features in the 2-D embedding map."""


@dataclass(frozen=True)
class EvalConfig:
    """All evaluation settings: what to evaluate, against what, on which data, where to write."""

    backbone: Optional[str] = None
    """exported backbone: a run's export/ directory or its backbone.pt (required)."""
    out: Optional[str] = None
    """folder the report is written to (required)."""
    compare: list[str] = field(default_factory=list)
    """more backbones: exports or plain torchvision ResNet state_dict files."""
    random: bool = True
    """include the random-init baseline (same arch, stem, image size and normalisation as backbone)."""
    benchmarks: list[str] = field(default_factory=list)
    """image-probe benchmarks: fashion-mnist[:ROOT], photo-patches[:ROOT], image-folder:DIR, cifar10, cifar100,
    stl10 (the last three download)."""
    shards: list[str] = field(default_factory=list)
    """held-out rendered shards for the dense probes."""
    run: Optional[str] = None
    """training run folder whose metrics.jsonl is plotted."""
    seed: int = 0
    """seed of the random-init baseline."""
    device: str = "cpu"
    """torch device: auto (cuda when available), cpu, cuda or cuda:N."""
    threads: int = 0
    """torch CPU threads (0 = torch's default)."""
    cache_dir: Optional[str] = None
    """extracted image features (default <out>/cache)."""
    image: ImageProbeConfig = field(default_factory=ImageProbeConfig)
    """image-level probes on frozen pooled c5 features."""
    dense: DenseProbeConfig = field(default_factory=DenseProbeConfig)
    """dense probes on held-out rendered views (shards)."""
    report: ReportConfig = field(default_factory=ReportConfig)
    """figures of the report."""

    def check(self) -> None:
        need(self.threads >= 0, "threads", ">= 0 (0 = torch's default)")


def load_eval_config(path: str | Path | None, overrides: Sequence[str] = ()) -> EvalConfig:
    """Defaults, overridden by the YAML file ``path`` (a path or a shipped config name, if given) and then by
    ``key=value`` overrides; errors name the file and key."""
    tree = load_yaml(path, SHIPPED_CONFIGS) if path is not None else {}
    for item in overrides:
        apply_override(tree, item)
    try:
        return build(EvalConfig, tree)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None
