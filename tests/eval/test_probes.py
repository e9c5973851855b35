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


def test_the_report_bolds_a_mean_only_when_it_wins_by_more_than_the_spread():
    from synthssl.train.eval.report import markdown_report

    meta = {"arch": "resnet18", "small_stem": False, "method": "simclr", "steps": 1, "image_size": 32}

    def report(pre: tuple[float, float], rnd: tuple[float, float]) -> str:
        metrics = {name: {"knn_k20": {"mean": m, "std": s}} for name, (m, s) in (("pre", pre), ("rnd", rnd))}
        return markdown_report(
            {
                "backbones": {n: {"source": "x", "meta": meta} for n in ("pre", "rnd")},
                "image": {"fmnist": {"num_train": 10, "num_test": 10, "seeds": [0, 1], "metrics": metrics}},
            }
        )

    tie = report((71.93, 1.80), (71.07, 0.95))  # the demo's k-NN: 0.86 apart, spreads sum to 2.75
    assert "| weighted k-NN, k=20 top-1 (%) | 71.93 ± 1.80 | 71.07 ± 0.95 |" in tie
    win = report((75.0, 1.0), (71.0, 1.0))
    assert "| **75.00 ± 1.00** | 71.00 ± 1.00 |" in win
    loss = report((69.0, 0.3), (71.1, 1.0))
    assert "| 69.00 ± 0.30 | **71.10 ± 1.00** |" in loss
