"""Spherical (cosine) k-means: pseudo-classes for the semantic level of DSC.

Lloyd iterations on L2-normalised points: assign each point to the centroid of highest
cosine similarity, then set each centroid to the normalised mean of its points (an
empty cluster keeps its previous centroid). Initialisation is farthest-point traversal
(the first centroid is the point most aligned with a random direction drawn from
`seed`; each next one is the point least similar to all chosen so far), which does
not depend on the order of the points: ranks that hold the same gathered points, and
a permuted batch, get the same clusters.
Memory: [N, K] similarities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Clustering:
    """centroids: float [K, D] unit vectors; labels: long [N] cluster of each point."""

    centroids: Tensor
    labels: Tensor


@torch.no_grad()
def farthest_point_init(x: Tensor, num_clusters: int, seed: int = 0) -> Tensor:
    """K centroids [K, D] chosen among the unit vectors x [N, D] by farthest-point traversal."""
    gen = torch.Generator().manual_seed(int(seed))
    direction = F.normalize(torch.randn(x.shape[1], generator=gen), dim=0).to(x.device, x.dtype)
    first = (x @ direction).argmax()  # stays on device
    centroids = [x[first]]
    closest = x @ centroids[0]  # [N] max sim to chosen
    for _ in range(num_clusters - 1):
        centroids.append(x[closest.argmin()])
        closest = torch.maximum(closest, x @ centroids[-1])
    return torch.stack(centroids)


@torch.no_grad()
def spherical_kmeans(
    points: Tensor, num_clusters: int, iterations: int = 3, seed: int = 0, init: Tensor | None = None
) -> Clustering:
    """Cluster points [N, D] into `num_clusters` groups by cosine similarity.

    init: optional [K, D] starting centroids (e.g. last step's); otherwise farthest-point
    initialisation seeded by `seed` (see the module docstring).
    """
    if points.dim() != 2:
        raise ValueError(f"spherical_kmeans: points must be [N, D], got {tuple(points.shape)}")
    n = points.shape[0]
    if not 1 <= num_clusters <= n:
        raise ValueError(f"spherical_kmeans: num_clusters must be in [1, {n}] (number of points), got {num_clusters}")
    if iterations < 1:
        raise ValueError(f"spherical_kmeans: iterations must be >= 1, got {iterations}")
    with torch.autocast(points.device.type, enabled=False):  # float32 throughout
        return _lloyd(F.normalize(points.float(), dim=1), num_clusters, iterations, seed, init)


def _lloyd(x: Tensor, num_clusters: int, iterations: int, seed: int, init: Tensor | None) -> Clustering:
    if init is None:
        centroids = farthest_point_init(x, num_clusters, seed)
    else:
        if init.shape != (num_clusters, x.shape[1]):
            raise ValueError(f"spherical_kmeans: init must be [{num_clusters}, {x.shape[1]}], got {tuple(init.shape)}")
        centroids = F.normalize(init.float(), dim=1)
    for _ in range(iterations):
        labels = (x @ centroids.t()).argmax(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=num_clusters)
        centroids = torch.where((counts > 0)[:, None], F.normalize(sums, dim=1), centroids)
    labels = (x @ centroids.t()).argmax(dim=1)
    return Clustering(centroids=centroids, labels=labels)


def cluster_statistics(labels: Tensor, num_clusters: int) -> dict[str, Tensor]:
    """Log-friendly statistics of a clustering (float32 scalars).

    entropy: entropy of the cluster-size distribution divided by log K (1 = perfectly
    balanced, 0 = one cluster); largest: fraction of points in the largest cluster;
    nonempty: number of non-empty clusters.
    """
    counts = torch.bincount(labels.flatten(), minlength=num_clusters).float()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    norm = torch.log(torch.tensor(float(max(num_clusters, 2)), device=p.device))
    return {"entropy": entropy / norm, "largest": p.max(), "nonempty": (counts > 0).sum().float()}
