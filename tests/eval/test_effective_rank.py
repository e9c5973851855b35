import math

import pytest
import torch

from synthssl.train.eval.effective_rank import effective_rank


def test_k_orthogonal_directions_of_equal_spread_give_exactly_k():
    for k in (1, 3, 7):
        x = torch.zeros(2 * k, 16)
        x[:k, :k] = torch.eye(k)
        x[k:, :k] = -torch.eye(k)  # centred already; singular values all sqrt(2)
        assert effective_rank(x) == pytest.approx(k, abs=1e-9)


def test_unequal_spread_is_the_exponential_of_the_variance_spectrum_entropy():
    x = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # variances 18 / 4 and 2 / 4
    p = torch.tensor([0.9, 0.1], dtype=torch.float64)
    assert effective_rank(x) == pytest.approx(math.exp(float(-(p * p.log()).sum())), abs=1e-12)


def test_a_shift_does_not_change_it_and_identical_rows_give_one():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert effective_rank(x + 100.0) == pytest.approx(effective_rank(x), rel=1e-9)
    assert effective_rank(torch.ones(5, 4)) == 1.0
    with pytest.raises(ValueError, match="N >= 2"):
        effective_rank(torch.ones(1, 4))
