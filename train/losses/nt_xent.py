"""NT-Xent (SimCLR's InfoNCE over a batch of view pairs), negatives gathered across ranks.

For N pairs (global batch over all ranks) the 2N embeddings are L2-normalised; each
embedding's positive is the other view of its pair and its negatives are the other
2N - 2 embeddings. loss_i = -log softmax_j(sim(i, j) / T)[pos(i)] over j != i.

Each rank computes the mean over its *local* 2B queries against all 2N keys, gathered
with `gather_with_grad`; averaging gradients over ranks then equals one process with
the whole batch (tested in tests/train/test_train_ddp.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from synthssl.train.distributed import gather_with_grad, rank


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.2) -> Tensor:
    """z1, z2: [B, D] embeddings of the two views of this rank's B pairs -> scalar loss."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(
            f"nt_xent: expected two [B, D] tensors of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    b = z1.shape[0]
    # Similarities and the softmax in float32 even under autocast (bf16 logits / T lose precision).
    with torch.autocast(device_type=z1.device.type, enabled=False):
        return _nt_xent_fp32(z1.float(), z2.float(), temperature, b)


def _nt_xent_fp32(z1: Tensor, z2: Tensor, temperature: float, b: int) -> Tensor:
    z1 = F.normalize(z1.float(), dim=1)
    z2 = F.normalize(z2.float(), dim=1)
    k1, k2 = gather_with_grad(z1), gather_with_grad(z2)
    n = k1.shape[0]
    keys = torch.cat([k1, k2], 0)  # [2N, D]: view 1 of all pairs, then view 2
    queries = torch.cat([z1, z2], 0)  # [2B, D]
    logits = queries @ keys.T / temperature  # [2B, 2N]
    offset = rank() * b
    local = torch.arange(b, device=z1.device) + offset
    self_idx = torch.cat([local, local + n])
    pos_idx = torch.cat([local + n, local])
    is_self = torch.arange(2 * n, device=z1.device)[None, :] == self_idx[:, None]  # (no one_hot: no device sync)
    logits = logits.masked_fill(is_self, float("-inf"))
    return F.cross_entropy(logits, pos_idx)
