"""InfoNCE with a positive key per query and shared negatives from a queue (MoCo).

loss(i) = -log( exp(q_i . k_i / t) / (exp(q_i . k_i / t) + sum_j exp(q_i . n_j / t)) )
with q, k, n L2-normalised; k from the momentum encoder (no gradient), n the queue.
MoCo v2: t = 0.2. Similarities in float32.

`symmetric_queue_info_nce` is the symmetrised form both MoCo v2 (pooled embeddings)
and DenseCL (its global and its dense term) minimise:
L = 1/2 [ mean_i nce(q1_i, k1_i) + mean_i nce(q2_i, k2_i) ], where k1 is the positive
key of each view-1 query (taken from view 2) and k2 that of each view-2 query.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def queue_info_nce(query: Tensor, key: Tensor, negatives: Tensor, temperature: float = 0.2) -> Tensor:
    """Per-query losses float32 [N] (reduce with ``.mean()``).

    query: [N, D] (online, with gradient); key: [N, D] positives; negatives: [M, D].
    """
    if query.shape != key.shape or negatives.dim() != 2 or negatives.shape[1] != query.shape[1]:
        raise ValueError(
            f"queue_info_nce: query/key [N, D] and negatives [M, D] expected, got "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(negatives.shape)}"
        )
    with torch.autocast(query.device.type, enabled=False):  # float32 logits
        q = F.normalize(query.float(), dim=1)
        k = F.normalize(key.float(), dim=1)
        n = F.normalize(negatives.float(), dim=1)
        logits = torch.cat([(q * k).sum(dim=1, keepdim=True), q @ n.t()], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device), reduction="none")


def symmetric_queue_info_nce(
    query1: Tensor, key1: Tensor, query2: Tensor, key2: Tensor, negatives: Tensor, temperature: float = 0.2
) -> Tensor:
    """Scalar float32 ``0.5 * (queue_info_nce(query1, key1).mean() + queue_info_nce(query2, key2).mean())``.

    query1/key1: [N, D] view-1 queries and their positive keys (from the other view's
    momentum encoder); query2/key2: [N', D] the same for view 2; negatives: [M, D] the
    queue, shared by both directions.
    """
    return 0.5 * (
        queue_info_nce(query1, key1, negatives, temperature).mean()
        + queue_info_nce(query2, key2, negatives, temperature).mean()
    )
