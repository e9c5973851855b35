"""An endless, resumable, rank-sharded sampler.

Epoch ``e`` is a permutation of ``range(n)`` drawn from ``(seed, e)``; rank ``r`` of
``world`` takes ``perm[r::world][:n // world]`` (every rank gets the same number of
samples, disjoint scenes). The sampler yields ``(index, position)`` where
``position`` counts the samples this rank has drawn since the start of training, so a
run resumed at position ``p`` sees exactly the samples it would have seen
(`start` jumps there in O(1)). ``position`` also seeds per-sample randomness in the
datasets (photo crops), which makes it independent of the number of workers.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler


class ResumableSampler(Sampler):
    """Endless (index, position) stream for one rank; see the module docstring."""

    def __init__(self, n: int, *, seed: int = 0, rank: int = 0, world: int = 1, start: int = 0, shuffle: bool = True):
        if n < world:
            raise ValueError(f"sampler: {n} samples cannot be shared by {world} ranks (need at least one each)")
        self.n, self.seed, self.rank, self.world = int(n), int(seed), int(rank), int(world)
        self.start, self.shuffle = int(start), bool(shuffle)
        self.per_rank = self.n // self.world

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This rank's indices in epoch `epoch`."""
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        return perm[self.rank :: self.world][: self.per_rank]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start
        while True:
            epoch, offset = divmod(position, self.per_rank)
            indices = self.epoch_indices(epoch)
            for i in range(offset, self.per_rank):
                yield int(indices[i]), position
                position += 1
