"""Supervised-contrastive loss over embeddings with (pseudo-)labels, across ranks.

Khosla et al. (NeurIPS 2020), "L_out" form: for each local embedding, every other
embedding of the *global* batch with the same label is a positive, every embedding
with another label a negative, itself neither. The semantic level of DSC feeds it
sampled pixel embeddings with k-means / prototype pseudo-labels.

Memory: [N_local, world * N_local] similarities.
"""

from __future__ import annotations

import torch
from torch import Tensor

from synthssl.train import distributed
from synthssl.train.distributed import global_mean
from synthssl.train.losses.dense_infonce import multi_positive_info_nce


def supcon_loss(embeddings: Tensor, labels: Tensor, temperature: float = 0.1, valid: Tensor | None = None) -> Tensor:
    """Scalar loss (the global mean over counted anchors).

    embeddings: float [N, D] this rank's embeddings (normalised inside); labels: long [N]
    (e.g. cluster ids, the same numbering on every rank); valid: bool [N] (default all).
    Keys are gathered from every rank with gradients (`gather_with_grad`).
    """
    if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"supcon_loss: embeddings [N, D] and labels [N] expected, got "
            f"{tuple(embeddings.shape)} and {tuple(labels.shape)}"
        )
    n = embeddings.shape[0]
    if valid is None:
        valid = torch.ones(n, dtype=torch.bool, device=embeddings.device)
    keys = distributed.gather_with_grad(embeddings)
    key_labels = distributed.gather_no_grad(labels)
    key_valid = distributed.gather_no_grad(valid)
    positive = labels[:, None] == key_labels[None, :]
    own = torch.arange(n, device=embeddings.device) + distributed.rank() * n
    exclude = torch.zeros_like(positive)
    exclude[torch.arange(n, device=embeddings.device), own] = True
    loss, counted = multi_positive_info_nce(
        embeddings, keys, positive, temperature, query_valid=valid, key_valid=key_valid, exclude=exclude
    )
    return global_mean(loss, counted)
