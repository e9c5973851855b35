"""Adversarial domain-adaptation losses on discriminator logits (positive = real photo).

GAN mode (alternating, Ren & Lee 2018), two losses from one forward pass:
- `discriminator_loss(d_syn, d_real)`: BCE on logits of *detached* features,
  synthetic = 0 (fake), real = 1; minimised by the discriminator's own optimiser.
- `encoder_adversarial_loss(d_syn)`: BCE(d_syn, 1) (non-saturating): the encoder
  makes synthetic features look real; minimised by the main optimiser, which does
  not update the discriminator.
DANN mode: `discriminator_loss` on features passed through `grad_reverse` with the
ramped coefficient; one optimiser; the encoder receives the reversed gradient.
`discriminator_accuracy`: fraction of locations classified correctly (logit > 0 = real).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def discriminator_loss(d_syn: Tensor, d_real: Tensor) -> Tensor:
    """Mean of BCE(d_syn, 0) and BCE(d_real, 1) (logits, any shape) -> scalar."""
    fake = F.binary_cross_entropy_with_logits(d_syn.float(), torch.zeros_like(d_syn, dtype=torch.float32))
    real = F.binary_cross_entropy_with_logits(d_real.float(), torch.ones_like(d_real, dtype=torch.float32))
    return 0.5 * (fake + real)


def encoder_adversarial_loss(d_syn: Tensor) -> Tensor:
    """BCE(d_syn, 1): small when the discriminator takes synthetic features for real."""
    return F.binary_cross_entropy_with_logits(d_syn.float(), torch.ones_like(d_syn, dtype=torch.float32))


@torch.no_grad()
def discriminator_accuracy(d_syn: Tensor, d_real: Tensor) -> Tensor:
    """Fraction of locations of both domains on the right side of 0."""
    correct = (d_syn < 0).float().sum() + (d_real > 0).float().sum()
    return correct / float(d_syn.numel() + d_real.numel())
