"""Weighted k-nearest-neighbour classifier on frozen features (InstDisc / DINO protocol).

Features are L2-normalised; the similarity is the cosine. The k most similar training
samples vote for their class with weight exp(cos / temperature) (temperature 0.07 by
default, as in Wu et al. 2018 and DINO); the class with the largest summed weight wins.
Ties are broken towards the smaller class index (torch.argmax semantics).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["knn_predict", "knn_accuracy"]


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    k: int,
    num_classes: int,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Predicted class of each test sample.

    Args:
        train_features: float [N, D]; train_labels: long [N] in [0, num_classes).
        test_features: float [M, D].
        k: neighbours (clamped to N).
    Returns:
        long [M] predicted labels.
    """
    if train_features.ndim != 2 or test_features.ndim != 2 or train_features.shape[1] != test_features.shape[1]:
        raise ValueError(
            f"k-NN needs [N, D] and [M, D] features, got {tuple(train_features.shape)} and {tuple(test_features.shape)}"
        )
    if k < 1:
        raise ValueError(f"k-NN k must be >= 1, got {k}")
    k = min(k, train_features.shape[0])
    train = F.normalize(train_features.float(), dim=1)
    labels = train_labels.long()
    predictions = []
    for start in range(0, test_features.shape[0], chunk_size):
        test = F.normalize(test_features[start : start + chunk_size].float(), dim=1)
        sim, idx = (test @ train.T).topk(k, dim=1)  # [m, k]
        weights = (sim / temperature).exp()
        votes = torch.zeros(test.shape[0], num_classes, dtype=weights.dtype, device=weights.device)
        votes.scatter_add_(1, labels[idx], weights)
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int,
    num_classes: int,
    temperature: float = 0.07,
) -> float:
    """Top-1 accuracy in percent of :func:`knn_predict` on the test set."""
    pred = knn_predict(train_features, train_labels, test_features, k, num_classes, temperature)
    return 100.0 * (pred == test_labels.to(pred.device)).double().mean().item()
