"""torch.distributed helpers (gather with gradients is a shared contract; keep stable).

Convention used by the whole trainer: every rank's loss is the mean over its *local*
samples; after backward the trainer averages parameter gradients over ranks
(`all_reduce_gradients`). A term that mixes samples of different ranks (contrastive
negatives, k-means over the global batch) gathers them with `gather_with_grad`,
whose backward sums the incoming gradients of all ranks and returns this rank's
slice, so that after averaging the gradient equals the gradient of the mean loss of
one process holding the whole global batch. tests/train/test_train_ddp.py
checks this with gloo.

All helpers are no-ops (identity) when torch.distributed is not initialised.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from synthssl.train.slurm_rendezvous import rendezvous_env


def is_distributed() -> bool:
    """True when a process group is initialised with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.batch = x.shape[0]
        ctx.rank = dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = ctx.rank * ctx.batch
        return grad[start : start + ctx.batch]


def gather_with_grad(x: Tensor) -> Tensor:
    """All-gather [B,...] from every rank into [world*B,...] (rank order), differentiable.

    Every rank must pass the same B. Backward: the gradients of all ranks w.r.t. the
    gathered tensor are summed, and each rank receives its own slice.
    Identity when not distributed.
    """
    if not is_distributed():
        return x
    return _GatherWithGrad.apply(x)


@torch.no_grad()
def gather_no_grad(x: Tensor) -> Tensor:
    """All-gather [B,...] -> [world*B,...] without gradients (e.g. momentum keys)."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


class _AllReduceSumWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_reduce_sum_with_grad(x: Tensor) -> Tensor:
    """Sum of `x` over ranks on every rank, differentiable (backward sums gradients)."""
    if not is_distributed():
        return x
    return _AllReduceSumWithGrad.apply(x)


@torch.no_grad()
def all_reduce_mean(x: Tensor) -> Tensor:
    """Mean of `x` over ranks (no gradient; for logging and metrics)."""
    if not is_distributed():
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / world_size()


def global_mean(values: Tensor, counted: Tensor) -> Tensor:
    """Mean of ``values[counted]`` over the *global* batch, scaled for rank-averaged gradients.

    When ranks count different numbers of terms (e.g. pixels that have a positive), the
    average of per-rank means is not the mean of the whole batch. This returns
    ``local_sum * world / global_count``; averaging it (and its gradient) over ranks, as
    the trainer does, gives exactly ``global_sum / global_count``.

    values: float [N] per-term losses on this rank; counted: bool [N]. Returns a scalar
    (0 with a graph when no rank counts any term).
    """
    local_sum = torch.where(counted, values, torch.zeros_like(values)).sum()
    count = counted.sum().to(values.dtype)
    if is_distributed():
        count = count.clone()
        dist.all_reduce(count, op=dist.ReduceOp.SUM)
    # No rank counted anything -> local_sum is 0 and so is the result (graph kept).
    return local_sum * world_size() / count.clamp_min(1.0)


@torch.no_grad()
def all_reduce_gradients(params: list[nn.Parameter], bucket_numel: int = 1 << 24) -> None:
    """Average ``p.grad`` over ranks, in flattened buckets.

    Parameters whose ``grad`` is None are skipped: every rank runs the same graph, so
    the set of parameters with gradients is the same on all ranks.
    """
    if not is_distributed():
        return
    n = world_size()
    params = [p for p in params if p.grad is not None]
    bucket: list[nn.Parameter] = []
    size = 0

    def flush() -> None:
        if not bucket:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in bucket])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= n
        offset = 0
        for p in bucket:
            k = p.grad.numel()
            p.grad.copy_(flat[offset : offset + k].view_as(p.grad))
            offset += k

    for p in params:
        if bucket and (
            size + p.numel() > bucket_numel
            or p.grad.dtype != bucket[0].grad.dtype
            or p.grad.device != bucket[0].grad.device
        ):
            flush()
            bucket, size = [], 0
        bucket.append(p)
        size += p.numel()
    flush()


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy parameters and buffers of rank `src` to all ranks."""
    if not is_distributed():
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=src)


class _GlobalBatchNormMixin:
    """Training statistics over the global batch of all ranks (see `GlobalBatchNorm2d`)."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dtype = x.dtype
        xf = x.float()
        dims = [d for d in range(x.ndim) if d != 1]
        count = torch.tensor([x.numel() // x.shape[1]], device=x.device, dtype=torch.float32)
        stats = torch.cat([xf.sum(dim=dims), (xf * xf).sum(dim=dims), count])
        stats = all_reduce_sum_with_grad(stats)
        c = x.shape[1]
        total = stats[-1]
        mean = stats[:c] / total
        var = (stats[c : 2 * c] / total - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (total / (total - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        shape = [1, c] + [1] * (x.ndim - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(dtype)


class GlobalBatchNorm2d(_GlobalBatchNormMixin, nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span the global batch of all ranks.

    Works with any backend (gloo on CPU, NCCL on GPU): per-channel sum, sum of squares
    and count are summed over ranks with `all_reduce_sum_with_grad`, so forward and
    backward equal one BatchNorm over the concatenated batch. Same parameters and
    buffers as BatchNorm2d (state_dicts are interchangeable). Plain BatchNorm2d when
    not distributed or in eval mode.
    """


class GlobalBatchNorm1d(_GlobalBatchNormMixin, nn.BatchNorm1d):
    """BatchNorm1d over the global batch (as `GlobalBatchNorm2d`), e.g. in projection MLPs."""


_GLOBAL_BN = {nn.BatchNorm1d: GlobalBatchNorm1d, nn.BatchNorm2d: GlobalBatchNorm2d}


def convert_to_global_bn(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d in `module` (in place) by its global version, keeping weights."""
    for name, child in list(module.named_children()):
        cls = _GLOBAL_BN.get(type(child))
        if cls is not None:
            new = cls(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.to(next(iter(child.state_dict().values())).device)
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_to_global_bn(child)
    return module


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Initialise the process group when launched by torchrun or by srun (WORLD_SIZE > 1).

    An srun task of a step of several tasks gets torchrun's variables from SLURM's
    (`synthssl.train.slurm_rendezvous.rendezvous_env`, written to os.environ) first.
    backend defaults to nccl with CUDA, gloo otherwise. Returns True when distributed.
    On CUDA, selects the device LOCAL_RANK (modulo the visible devices: a task that SLURM
    gives one GPU sees it as device 0).
    """
    os.environ.update(rendezvous_env(os.environ))
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return is_distributed()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return True


def cleanup() -> None:
    """Destroy the process group if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
