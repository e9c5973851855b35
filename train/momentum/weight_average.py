"""An exponential moving average of weights (Polyak averaging), exported instead of the last weights.

``WeightAverage(modules, decay)`` keeps a shadow copy of the floating-point state of each module
(parameters and BatchNorm running statistics; integer counters such as ``num_batches_tracked``
are left to the live module). After optimiser step t (t = 1, 2, ...):

    shadow <- d_t * shadow + (1 - d_t) * live,    d_t = min(decay, (1 + t) / (10 + t))

The warm-up d_t (as in TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``) keeps
the initial weights from lingering in short runs: after 300 steps at decay 0.99 the random
init weighs about 1e-4, not 0.99^300 = 5 %. ``applied()`` swaps the shadow weights in for the
duration of a ``with`` block (export), then restores the live ones. The state (``state_dict``)
goes into the checkpoint, so a resumed run averages exactly as an uninterrupted one.

Unlike `synthssl.train.momentum.momentum.ema_update` (the MoCo/BYOL target encoders, module
copies that take part in training and copy BatchNorm statistics), this keeps tensors only,
averages the statistics too and never feeds back into training.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn


class WeightAverage:
    """EMA of the floating-point state of named modules; see the module docstring."""

    def __init__(self, modules: dict[str, nn.Module], decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"WeightAverage: decay must be in (0, 1), got {decay}")
        self.decay, self.updates = float(decay), 0
        # ``<module name>.<state key>`` -> the live tensor (floating-point entries only). Optimisers,
        # BatchNorm and checkpoint loading update these tensors in place, so they are listed once.
        self.live: dict[str, Tensor] = {
            f"{name}.{key}": value.detach()
            for name, module in modules.items()
            for key, value in module.state_dict(keep_vars=True).items()
            if value.is_floating_point()
        }
        self.shadow: dict[str, Tensor] = {key: value.clone() for key, value in self.live.items()}

    def current_decay(self) -> float:
        """d_t of the next update."""
        t = self.updates + 1
        return min(self.decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update(self) -> None:
        """Fold the live weights in (call once after every optimiser step)."""
        keys = list(self.shadow)
        torch._foreach_lerp_([self.shadow[k] for k in keys], [self.live[k] for k in keys], 1.0 - self.current_decay())
        self.updates += 1

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The shadow weights in the modules inside the block, the live ones again after it."""
        saved = {k: v.clone() for k, v in self.live.items()}
        with torch.no_grad():
            for k, v in self.live.items():
                v.copy_(self.shadow[k])
        try:
            yield
        finally:
            with torch.no_grad():
                for k, v in self.live.items():
                    v.copy_(saved[k])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": {k: v.detach() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        missing = sorted(set(self.shadow) - set(state["shadow"]))
        if missing:
            raise RuntimeError(f"checkpoint: the weight average lacks {missing[:4]}")
        with torch.no_grad():
            for k, v in self.shadow.items():
                v.copy_(state["shadow"][k])
        self.updates = int(state["updates"])
