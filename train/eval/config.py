"""Settings of ``train-ssl eval`` (YAML file given with ``--config``; every key optional).

Sections: ``image`` (:class:`~synthssl.train.eval.image_probe.ImageProbeConfig`, with a
nested ``linear`` section), ``dense`` (:class:`~synthssl.train.eval.dense_probe.DenseProbeConfig`),
``report`` (:class:`ReportConfig`) and the top-level keys of :class:`EvalConfig`.
Unknown keys and wrong types are errors naming the file and the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


from synthssl.train.config import from_dict, load_raw
from synthssl.train.eval.dense_probe import DenseProbeConfig
from synthssl.train.eval.image_probe import ImageProbeConfig

__all__ = ["ReportConfig", "EvalConfig", "load_eval_config"]


@dataclass(frozen=True)
class ReportConfig:
    """Figures: ``scenes`` held-out views and ``photos`` real photos (first files, sorted,
    under ``photo_dir``) in the dense example grids; ``cell`` pixels per grid tile."""

    scenes: int = 4
    photos: int = 3
    photo_dir: str | None = "/usr/share/backgrounds/mate"
    cell: int = 128
    embedding_points: int = 1000


@dataclass(frozen=True)
class EvalConfig:
    """All evaluation settings. ``seed`` initialises the random baseline; ``cache_dir``
    (default ``<out>/cache``) holds extracted image features; ``threads`` sets
    torch's CPU threads (0 = torch's default)."""

    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    cache_dir: str | None = None
    image: ImageProbeConfig = field(default_factory=ImageProbeConfig)
    dense: DenseProbeConfig = field(default_factory=DenseProbeConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


def load_eval_config(path: str | Path | None) -> EvalConfig:
    """Defaults, overridden by the YAML file at ``path`` (if given); errors name the file and key."""
    return from_dict(EvalConfig, load_raw(path), str(path) if path is not None else "eval")
