"""bench/bench_render.py: the steady-state rate leaves the workers' start-up out, so 1 and N workers
compare what the workers do once running."""

from __future__ import annotations

import pytest
from bench_render import steady_rate


def test_steady_rate_leaves_start_up_out():
    # one worker: 5 s start-up, then a 2-scene shard every second
    one = [(5.0 + i, 2) for i in range(1, 5)]
    assert steady_rate(one, 1) == pytest.approx(2.0)
    # two workers, the same per-worker speed, start-ups of 5 and 5.5 s: twice the rate, not less
    two = sorted([(5.0 + i, 2) for i in range(1, 5)] + [(5.5 + i, 2) for i in range(1, 5)])
    assert steady_rate(two, 2) / (2 * steady_rate(one, 1)) == pytest.approx(1.0)
    assert steady_rate(two[:2], 2) is None  # every shard finished in the first round: no steady state
