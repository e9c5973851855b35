"""Pixel-level contrast: sampled locations vs their neighbours in the other view.

Memory-bounded multi-positive InfoNCE over the locations of the whole (global) batch:

1. sample up to ``num_samples`` locations per image of view 1 among those that have a
   neighbour in view 2 (all of them, in order, when there are at most that many);
2. pair each with its partner (best neighbour) in view 2: B x S pairs;
3. a view-1 sample's positives are the sampled view-2 locations *of the same image*
   that are its neighbours (its partner at least); every other sampled view-2 location
   of the global batch (other images, other places of the same image) is a negative;
   symmetrically for view-2 samples against view-1 samples.

Similarities per direction: one float32 [B*S, world*B*S] matrix for the denominators
plus [B, S, S] within images for the positives (never a dense [B*N, B*N] matrix, and no
[B*S, world*B*S] mask: `block_positive_info_nce`).
Keys are gathered across ranks with gradients, and the mean is over the global batch
(`global_mean`), so one process with the whole batch gives the same loss and gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from synthssl.train import distributed
from synthssl.train.distributed import global_mean
from synthssl.train.losses.dense_infonce import block_positive_info_nce
from synthssl.train.neighbours.dense_neighbours import DenseNeighbours


def sample_locations(
    candidates: Tensor, num_samples: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Pick up to `num_samples` candidate locations per image.

    candidates: bool [B, N]. Returns (index long [B, S], valid bool [B, S]) with
    S = min(num_samples, N); when S = N every location is taken in order (deterministic),
    otherwise candidates are drawn uniformly without replacement (non-candidates only
    fill images with fewer than S candidates, and are marked invalid).
    """
    if num_samples < 1:
        raise ValueError(f"sample_locations: num_samples must be >= 1, got {num_samples}")
    B, N = candidates.shape
    if num_samples >= N:
        index = torch.arange(N, device=candidates.device).expand(B, N)
    else:
        noise = torch.rand(B, N, device=candidates.device, generator=generator)
        index = (noise + candidates.float()).topk(num_samples, dim=1).indices
    return index, torch.gather(candidates, 1, index)


def _take(embeddings: Tensor, index: Tensor) -> Tensor:
    """embeddings [B, D, N], index [B, S] -> [B, S, D]."""
    B, D, _ = embeddings.shape
    return torch.gather(embeddings, 2, index[:, None, :].expand(B, D, index.shape[1])).transpose(1, 2)


def pixel_contrast_loss(
    embeddings1: Tensor,
    embeddings2: Tensor,
    neighbours: DenseNeighbours,
    num_samples: int = 64,
    temperature: float = 0.2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Symmetric multi-positive InfoNCE over sampled locations (scalar, global mean).

    embeddings1: float [B, D, N1] dense embeddings of view 1 (row-major locations);
    embeddings2: float [B, D, N2]; neighbours: positives of view-1 locations among
    view-2 locations (`DenseNeighbours`, mask [B, N1, N2]).
    """
    B, D, N1 = embeddings1.shape
    if embeddings2.shape[:2] != (B, D) or neighbours.mask.shape != (B, N1, embeddings2.shape[2]):
        raise ValueError(
            f"pixel_contrast_loss: embeddings [B, D, N1] {tuple(embeddings1.shape)}, "
            f"[B, D, N2] {tuple(embeddings2.shape)} and neighbours [B, N1, N2] "
            f"{tuple(neighbours.mask.shape)} do not agree"
        )
    q_index, valid = sample_locations(neighbours.has_partner, num_samples, generator)  # [B, S]
    k_index = torch.gather(neighbours.partner, 1, q_index).clamp_min(0)  # [B, S]
    S = q_index.shape[1]
    batch = torch.arange(B, device=q_index.device)
    pos_local = neighbours.mask[batch[:, None, None], q_index[:, :, None], k_index[:, None, :]]  # [B,S,S]

    q = _take(embeddings1, q_index)  # [B, S, D]
    k = _take(embeddings2, k_index)
    all_q = distributed.gather_with_grad(q.reshape(B * S, D))  # [world*B*S, D]
    all_k = distributed.gather_with_grad(k.reshape(B * S, D))
    all_valid = distributed.gather_no_grad(valid.reshape(B * S))
    loss12, counted12 = block_positive_info_nce(
        q, k, pos_local, all_k, temperature, query_valid=valid, own_key_valid=valid, all_key_valid=all_valid
    )
    loss21, counted21 = block_positive_info_nce(
        k,
        q,
        pos_local.transpose(1, 2),
        all_q,
        temperature,
        query_valid=valid,
        own_key_valid=valid,
        all_key_valid=all_valid,
    )
    return 0.5 * (global_mean(loss12, counted12) + global_mean(loss21, counted21))
