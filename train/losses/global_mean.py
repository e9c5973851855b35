"""Mean over the *global* batch from per-rank sums, so multi-GPU equals one GPU.

The trainer averages parameter gradients over ranks (see `synthssl.train.distributed`).
When ranks count different numbers of terms (e.g. pixels that have a positive), the
average of per-rank means is not the mean of the whole batch. `global_mean` returns
``local_sum * world / global_count``; averaging it (and its gradient) over ranks gives
exactly ``global_sum / global_count``.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from synthssl.train import distributed


def global_mean(values: Tensor, counted: Tensor) -> Tensor:
    """Mean of ``values[counted]`` over all ranks, scaled for rank-averaged gradients.

    values: float [N] per-term losses on this rank; counted: bool [N]. Returns a scalar
    (0 with a graph when no rank counts any term).
    """
    local_sum = torch.where(counted, values, torch.zeros_like(values)).sum()
    count = counted.sum().to(values.dtype)
    if distributed.is_distributed():
        count = count.clone()
        dist.all_reduce(count, op=dist.ReduceOp.SUM)
    # No rank counted anything -> local_sum is 0 and so is the result (graph kept).
    return local_sum * distributed.world_size() / count.clamp_min(1.0)
