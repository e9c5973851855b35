"""Online k-NN monitor, called by the trainer every ``eval.every_steps`` steps.

Configured by the trainer YAML section ``eval.online_knn`` (fields of
:class:`OnlineKNNConfig`, all optional)::

    eval:
      every_steps: 500
      online_knn:
        dataset: fashion-mnist      # or image-folder:/path, cifar10, ...
        train_size: 1000
        test_size: 500
        k: [20]
        image_size: 64              # set to the training image size

The labeled subsets are drawn once (seeded) and kept in memory, preprocessed; instances
are memoised per configuration, so calling ``from_config`` at every evaluation costs
nothing after the first call, and ``evaluate`` only runs the backbone on
``train_size + test_size`` images. It returns ``{"top1_k20": ...}`` (% top-1 per k).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from synthssl.core.config import build
from synthssl.train.data.batch import IMAGENET_MEAN, IMAGENET_STD
from synthssl.train.eval.benchmarks import load_benchmark
from synthssl.train.eval.features import pooled_features, preprocess_images
from synthssl.train.eval.knn import knn_accuracy

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "OnlineKNNConfig", "OnlineKNN"]


@dataclass(frozen=True)
class OnlineKNNConfig:
    """Settings of the online k-NN monitor (trainer YAML section ``eval.online_knn``)."""

    dataset: str = "fashion-mnist"
    train_size: int = 1000
    test_size: int = 500
    k: tuple[int, ...] = (20,)
    temperature: float = 0.07
    image_size: int = 64
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    batch_size: int = 256
    seed: int = 0


_INSTANCES: dict[OnlineKNNConfig, "OnlineKNN"] = {}


class OnlineKNN:
    """Weighted k-NN top-1 of a backbone on a fixed labeled subset, kept in memory."""

    def __init__(
        self,
        config: OnlineKNNConfig,
        train_images: np.ndarray,
        train_labels: np.ndarray,
        test_images: np.ndarray,
        test_labels: np.ndarray,
        num_classes: int,
    ):
        self.config = config
        self.num_classes = num_classes
        self._train = preprocess_images(train_images, config.image_size, config.mean, config.std)
        self._test = preprocess_images(test_images, config.image_size, config.mean, config.std)
        self._train_labels = torch.from_numpy(np.asarray(train_labels, dtype=np.int64))
        self._test_labels = torch.from_numpy(np.asarray(test_labels, dtype=np.int64))

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | OnlineKNNConfig | None) -> "OnlineKNN":
        """The monitor for a YAML section (a mapping; unknown keys and wrong types are errors
        naming ``eval.online_knn.<key>``); the dataset is loaded and subsampled on the
        first call for a configuration, later calls return the same instance."""
        config = build(OnlineKNNConfig, section, "eval.online_knn")
        if config.train_size < 1 or config.test_size < 1 or not config.k or min(config.k) < 1:
            raise ValueError(f"eval.online_knn: train_size, test_size and every k must be >= 1, got {config}")
        if config not in _INSTANCES:
            train, test = load_benchmark(config.dataset, folder_image_size=config.image_size)
            tr = train.sample(config.train_size, config.seed)
            te = test.sample(config.test_size, config.seed + 1)
            _INSTANCES[config] = cls(
                config, train.images[tr], train.labels[tr], test.images[te], test.labels[te], train.num_classes
            )
        return _INSTANCES[config]

    @torch.no_grad()
    def _features(self, backbone: nn.Module, images: torch.Tensor, device) -> torch.Tensor:
        out = [
            pooled_features(backbone, images[s : s + self.config.batch_size].to(device)).float()
            for s in range(0, images.shape[0], self.config.batch_size)
        ]
        return torch.cat(out)

    def evaluate(self, backbone: nn.Module, device: torch.device | str) -> dict[str, float]:
        """{"top1_k{k}": top-1 %} for each configured k. Runs the backbone in eval
        mode without gradients and restores its training mode afterwards."""
        was_training = backbone.training
        backbone.eval()
        try:
            train = self._features(backbone, self._train, device)
            test = self._features(backbone, self._test, device)
        finally:
            backbone.train(was_training)
        labels_train = self._train_labels.to(train.device)
        labels_test = self._test_labels.to(test.device)
        return {
            f"top1_k{k}": knn_accuracy(
                train, labels_train, test, labels_test, k, self.num_classes, self.config.temperature
            )
            for k in self.config.k
        }
