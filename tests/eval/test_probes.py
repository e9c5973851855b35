"""k-NN and linear probe on features with known structure."""
import torch

from synthssl.train.eval.knn import knn_accuracy, knn_predict
from synthssl.train.eval.linear_probe import fit_linear_probe, linear_probe_accuracy


def _clusters(n_per_class: int, num_classes: int, dim: int, noise: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g) * 3
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    return centres[labels] + noise * torch.randn(len(labels), dim, generator=g), labels


def test_knn_separable_is_perfect():
    x, y = _clusters(30, 5, 16, 0.1, seed=0)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    x, y = x[perm], y[perm]
    assert knn_accuracy(x[:100], y[:100], x[100:], y[100:], k=20, num_classes=5) == 100.0


def test_knn_weights_favour_close_neighbours():
    # one very similar sample of class 1 against two dissimilar samples of class 0
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([1, 0, 0])
    test = torch.tensor([[1.0, 0.05]])
    assert knn_predict(train, labels, test, k=3, num_classes=2, temperature=0.07).item() == 1
    # with a huge temperature the votes are nearly uniform and the majority wins
    assert knn_predict(train, labels, test, k=3, num_classes=2, temperature=100.0).item() == 0


def test_linear_probe_beats_chance_on_linear_task():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 20, generator=g)
    w = torch.randn(20, 4, generator=g)
    y = (x @ w).argmax(1)  # linearly separable, but not by clusters
    acc = linear_probe_accuracy(x[:400], y[:400], x[400:], y[400:], num_classes=4)
    assert acc > 85.0  # chance is 25 %


def test_linear_probe_is_deterministic():
    x, y = _clusters(20, 3, 8, 2.0, seed=3)
    a = fit_linear_probe(x, y, 3)
    b = fit_linear_probe(x, y, 3)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
