"""Gradient reversal layer (DANN, Ganin & Lempitsky 2015)."""

from __future__ import annotations

import torch
from torch import Tensor


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, coeff: float) -> Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return -ctx.coeff * grad, None


def grad_reverse(x: Tensor, coeff: float) -> Tensor:
    """Identity forward; backward multiplies the gradient by -coeff."""
    return _GradReverse.apply(x, float(coeff))
