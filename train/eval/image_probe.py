"""Image-level probes of a frozen backbone: weighted k-NN and linear probe, over seeds.

For every seed s, a training subset (``train_size`` images) and a test subset
(``test_size``) are drawn from the benchmark with ``numpy.random.default_rng``
(seeds s and s + 100003); features of the union of all drawn images are extracted
once and cached. Each protocol's top-1 accuracy (%) is reported as mean and sample
standard deviation (ddof = 1; 0 for one seed) over seeds, plus the per-seed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from synthssl.train.eval.feature_cache import FeatureCache, backbone_fingerprint, indices_fingerprint
from synthssl.train.eval.features import extract_features
from synthssl.train.eval.knn import knn_accuracy
from synthssl.train.eval.labeled_images import LabeledImages
from synthssl.train.eval.linear_probe import LinearProbeConfig, linear_probe_accuracy

__all__ = ["ImageProbeConfig", "ImageProbeResult", "mean_std", "run_image_probes", "TEST_SEED_OFFSET"]

TEST_SEED_OFFSET = 100003


@dataclass(frozen=True)
class ImageProbeConfig:
    """Image-level protocol settings (YAML section ``image``)."""

    train_size: int = 1000
    """training images drawn per seed."""
    test_size: int = 500
    """test images drawn per seed."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """mean and std over these seeds."""
    knn_k: tuple[int, ...] = (20, 200)
    """weighted k-NN neighbours (cosine, votes exp(cos / T))."""
    knn_temperature: float = 0.07
    """k-NN vote temperature T."""
    linear: LinearProbeConfig = field(default_factory=LinearProbeConfig)
    """logistic regression, full-batch L-BFGS on standardised features."""
    batch_size: int = 256
    """feature-extraction batch."""


@dataclass
class ImageProbeResult:
    """metrics: name -> {"mean", "std", "values"} in % top-1; embedding: the first seed's
    test features [M, D] and labels [M] (for the 2-D map in the report)."""

    metrics: dict[str, dict[str, float | list[float]]]
    embedding: torch.Tensor
    embedding_labels: np.ndarray
    class_names: tuple[str, ...]
    dataset: str


def mean_std(values: Sequence[float]) -> dict[str, float | list[float]]:
    """{"mean", "std" (sample, ddof=1; 0 for a single value), "values"}."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "values": [float(v) for v in arr]}


def _features(
    backbone: nn.Module,
    data: LabeledImages,
    indices: np.ndarray,
    image_size: int | None,
    mean: Sequence[float],
    std: Sequence[float],
    device,
    batch_size: int,
    cache: FeatureCache,
    fingerprint: str,
) -> torch.Tensor:
    parts = {
        "backbone": fingerprint,
        "dataset": data.name,
        "n": len(data),
        "indices": indices_fingerprint(indices),
        "image_size": image_size,
        "mean": list(mean),
        "std": list(std),
    }
    return cache.get_or_compute(
        parts,
        lambda: extract_features(
            backbone,
            data.images[indices],
            image_size=image_size,
            mean=mean,
            std=std,
            device=device,
            batch_size=batch_size,
            progress=f"features {data.name}",
        ),
    )


def run_image_probes(
    backbone: nn.Module,
    train: LabeledImages,
    test: LabeledImages,
    *,
    image_size: int | None,
    mean: Sequence[float],
    std: Sequence[float],
    config: ImageProbeConfig = ImageProbeConfig(),
    device: torch.device | str = "cpu",
    cache: FeatureCache | None = None,
) -> ImageProbeResult:
    """Run k-NN (each k in ``config.knn_k``) and the linear probe for every seed."""
    if not config.seeds:
        raise ValueError("image.seeds: at least one seed is needed")
    if train.class_names != test.class_names:
        raise ValueError(f"{train.name} and {test.name} have different classes")
    cache = cache if cache is not None else FeatureCache()
    fingerprint = backbone_fingerprint(backbone)
    train_sel = {s: train.sample(config.train_size, s) for s in config.seeds}
    test_sel = {s: test.sample(config.test_size, s + TEST_SEED_OFFSET) for s in config.seeds}
    train_all = np.unique(np.concatenate(list(train_sel.values())))
    test_all = np.unique(np.concatenate(list(test_sel.values())))
    args = (image_size, mean, std, device, config.batch_size, cache, fingerprint)
    train_feats = _features(backbone, train, train_all, *args)
    test_feats = _features(backbone, test, test_all, *args)
    train_labels = torch.from_numpy(train.labels)
    test_labels = torch.from_numpy(test.labels)

    values: dict[str, list[float]] = {f"knn_k{k}": [] for k in config.knn_k}
    values["linear"] = []
    for s in config.seeds:
        tr = torch.from_numpy(np.searchsorted(train_all, train_sel[s]))
        te = torch.from_numpy(np.searchsorted(test_all, test_sel[s]))
        ftr, fte = train_feats[tr], test_feats[te]
        ltr, lte = train_labels[train_sel[s]], test_labels[test_sel[s]]
        for k in config.knn_k:
            values[f"knn_k{k}"].append(knn_accuracy(ftr, ltr, fte, lte, k, train.num_classes, config.knn_temperature))
        values["linear"].append(linear_probe_accuracy(ftr, ltr, fte, lte, train.num_classes, config.linear))
    first = config.seeds[0]
    return ImageProbeResult(
        metrics={name: mean_std(v) for name, v in values.items()},
        embedding=test_feats[torch.from_numpy(np.searchsorted(test_all, test_sel[first]))],
        embedding_labels=test.labels[test_sel[first]],
        class_names=train.class_names,
        dataset=train.name.split("/")[0],
    )
