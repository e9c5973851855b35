"""Linear probe on cached frozen features: multinomial logistic regression, fixed recipe.

Recipe (deterministic, no tuning on the test set):
1. standardise every feature dimension with the training set's mean and std;
2. weights and bias start at zero (the objective is convex, so the optimum does not
   depend on an initialisation and no random numbers are involved);
3. full-batch L-BFGS (strong Wolfe line search) on mean cross-entropy
   + ``weight_decay`` / 2 * ||W||^2 for ``max_iter`` iterations, in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["LinearProbeConfig", "LinearProbe", "fit_linear_probe", "linear_probe_accuracy"]


@dataclass(frozen=True)
class LinearProbeConfig:
    """Fixed linear-probe recipe (see the module docstring)."""

    weight_decay: float = 1e-3
    """L2 penalty of the logistic regression."""
    max_iter: int = 100
    """L-BFGS iterations."""


@dataclass(frozen=True)
class LinearProbe:
    """A fitted probe: logits = ((x - mean) / std) @ weight.T + bias."""

    mean: torch.Tensor  # [D]
    std: torch.Tensor  # [D]
    weight: torch.Tensor  # [C, D]
    bias: torch.Tensor  # [C]

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """float64 [M, C] class scores of float [M, D] features."""
        x = (features.double().to(self.mean.device) - self.mean) / self.std
        return x @ self.weight.T + self.bias

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """long [M] predicted classes."""
        return self.logits(features).argmax(dim=1)


def fit_linear_probe(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, config: LinearProbeConfig = LinearProbeConfig()
) -> LinearProbe:
    """Fit the probe on float [N, D] features with long [N] labels."""
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"linear probe needs [N, D] features and [N] labels, got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    x = features.detach().double().cpu()
    y = labels.detach().long().cpu()
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False).clamp_min(1e-6)
    x = (x - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=config.max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, y) + 0.5 * config.weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LinearProbe(mean, std, weight.detach(), bias.detach())


def linear_probe_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    config: LinearProbeConfig = LinearProbeConfig(),
) -> float:
    """Top-1 accuracy in percent of a probe fitted on train and scored on test."""
    probe = fit_linear_probe(train_features, train_labels, num_classes, config)
    return 100.0 * (probe.predict(test_features) == test_labels.cpu()).double().mean().item()
