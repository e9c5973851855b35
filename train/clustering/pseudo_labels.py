"""Pseudo-classes of pixel embeddings for the semantic level of DSC.

Two labellers, both working on *target* embeddings (detached or from a momentum
encoder) of the global batch, so every rank derives identical labels:

- `KMeansLabeler`: spherical k-means (a few Lloyd iterations) warm-started from the
  previous step's centroids (a buffer: saved in checkpoints, identical on all ranks).
- `PrototypeLabeler`: learnable prototypes; Sinkhorn-balanced codes (SwAV) give the
  labels, and `prototype_loss` trains the prototypes (and the online embeddings) to
  predict the codes.

Both take local targets [M, D], gather them across ranks, and return the local labels
[M] plus statistics of the global clustering (`cluster_statistics`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthssl.train import distributed
from synthssl.train.clustering.kmeans import cluster_statistics, spherical_kmeans
from synthssl.train.clustering.sinkhorn import sinkhorn


def _local_slice(x: Tensor, m: int) -> Tensor:
    start = distributed.rank() * m
    return x[start : start + m]


class KMeansLabeler(nn.Module):
    """Cosine k-means pseudo-labels with `num_clusters` clusters, warm-started across steps."""

    centroids: Tensor
    initialised: Tensor

    def __init__(self, dim: int, num_clusters: int = 32, iterations: int = 3):
        super().__init__()
        if num_clusters < 2 or iterations < 1:
            raise ValueError(
                f"KMeansLabeler: need num_clusters >= 2 and iterations >= 1, got {num_clusters}, {iterations}"
            )
        self.num_clusters, self.iterations = num_clusters, iterations
        self.register_buffer("centroids", torch.zeros(num_clusters, dim))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self._ready = False  # host mirror of `initialised`: avoids a device sync every step

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[override]
        super()._load_from_state_dict(*args, **kwargs)
        self._ready = False  # re-read `initialised` after loading

    @torch.no_grad()
    def forward(self, targets: Tensor, seed: int) -> tuple[Tensor, dict[str, Tensor]]:
        """targets float [M, D] (this rank) -> (labels long [M], statistics)."""
        points = distributed.gather_no_grad(targets.detach().float())
        if not self._ready:
            self._ready = bool(self.initialised)
        init = self.centroids if self._ready else None
        clustering = spherical_kmeans(points, self.num_clusters, self.iterations, seed=seed, init=init)
        self.centroids.copy_(clustering.centroids)
        self.initialised.fill_(True)
        self._ready = True
        return _local_slice(clustering.labels, targets.shape[0]), cluster_statistics(
            clustering.labels, self.num_clusters
        )


class PrototypeLabeler(nn.Module):
    """Learnable prototypes [K, D] with Sinkhorn-balanced assignments (SwAV rule)."""

    def __init__(
        self, dim: int, num_clusters: int = 32, epsilon: float = 0.05, iterations: int = 3, temperature: float = 0.1
    ):
        super().__init__()
        if num_clusters < 2:
            raise ValueError(f"PrototypeLabeler: num_clusters must be >= 2, got {num_clusters}")
        self.num_clusters, self.epsilon, self.iterations = num_clusters, epsilon, iterations
        self.temperature = temperature
        self.prototypes = nn.Parameter(F.normalize(torch.randn(num_clusters, dim), dim=1))

    def _normalised_prototypes(self) -> Tensor:
        return F.normalize(self.prototypes.float(), dim=1)

    @torch.no_grad()
    def forward(self, targets: Tensor, seed: int = 0) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """targets float [M, D] -> (labels long [M], codes float [M, K], statistics)."""
        points = F.normalize(distributed.gather_no_grad(targets.detach().float()), dim=1)
        with torch.autocast(points.device.type, enabled=False):
            scores = points @ self._normalised_prototypes().t()
        codes = sinkhorn(scores, self.epsilon, self.iterations)
        labels = codes.argmax(dim=1)
        m = targets.shape[0]
        return (_local_slice(labels, m), _local_slice(codes, m), cluster_statistics(labels, self.num_clusters))

    def prototype_loss(self, online: Tensor, codes: Tensor) -> Tensor:
        """Cross-entropy between softmax(online . prototypes / t) and the codes, per row [M]."""
        with torch.autocast(online.device.type, enabled=False):
            logits = F.normalize(online.float(), dim=1) @ self._normalised_prototypes().t() / self.temperature
        return -(codes * F.log_softmax(logits, dim=1)).sum(dim=1)
