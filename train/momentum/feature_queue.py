"""A FIFO queue of past key embeddings: extra negatives for InfoNCE (MoCo).

The queue is a buffer [size, D] of L2-normalised vectors (initialised with random unit
vectors, as MoCo does) plus a write pointer, so it is saved in checkpoints and restored
on resume. Enqueue the keys of the *global* batch (gathered from every rank) so that all
ranks keep identical queues.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FeatureQueue(nn.Module):
    """FIFO of `size` embeddings of dimension `dim`."""

    queue: Tensor
    pointer: Tensor

    def __init__(self, dim: int, size: int):
        super().__init__()
        if dim < 1 or size < 1:
            raise ValueError(f"FeatureQueue: dim and size must be >= 1, got dim={dim}, size={size}")
        self.register_buffer("queue", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.queue.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write keys [N, D] (normalised here) over the oldest entries; N <= size."""
        n = keys.shape[0]
        if keys.dim() != 2 or keys.shape[1] != self.queue.shape[1] or n > self.size:
            raise ValueError(
                f"FeatureQueue.enqueue: keys must be [N <= {self.size}, {self.queue.shape[1]}], got {tuple(keys.shape)}"
            )
        index = (self.pointer + torch.arange(n, device=keys.device)) % self.size
        self.queue[index] = F.normalize(keys.detach().to(self.queue.dtype), dim=1)
        self.pointer.copy_((self.pointer + n) % self.size)
