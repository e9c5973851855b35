"""In-memory labeled image set: the common currency of the image-level probes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LabeledImages"]


@dataclass(frozen=True)
class LabeledImages:
    """A labeled set of images held in memory.

    Attributes:
        images: uint8 [N, H, W, C], C = 1 (grayscale) or 3 (RGB), all the same size.
        labels: int64 [N], class indices in [0, len(class_names)).
        class_names: name of each class, index = label.
        name: human-readable name used in reports and cache keys (e.g. "fashion-mnist/test").
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] not in (1, 3):
            raise ValueError(
                f"{self.name}: images must be uint8 [N, H, W, 1|3], got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.name}: labels must be [N={self.images.shape[0]}], got {self.labels.shape}")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"{self.name}: labels outside [0, {len(self.class_names)})")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: np.ndarray, name: str | None = None) -> "LabeledImages":
        """The images at ``indices`` (int array), in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        return LabeledImages(self.images[indices], self.labels[indices], self.class_names, name or self.name)

    def sample(self, size: int | None, seed: int) -> np.ndarray:
        """Indices of a class-agnostic random subset of ``size`` images (all if None or larger),
        drawn with ``numpy.random.default_rng(seed)``, sorted ascending."""
        n = len(self)
        if size is None or size >= n:
            return np.arange(n, dtype=np.int64)
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)
