"""bench/bench_stream.py: the quick dry run prints one JSON object whose figures agree with each other,
and bad options are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "device",
    "precision",
    "arch",
    "size",
    "batch",
    "workers",
    "render",
    "render_set",
    "physics",
    "steps",
    "cpu_count",
    "torch_threads",
    "startup_s",
    "delivered_pairs_per_s",
    "per_worker_pairs_per_s",
    "consumed_pairs_per_s",
    "gpu_idle_fraction",
    "workers_needed",
}


def _bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench/bench_stream.py"), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.gl
@pytest.mark.ddp
@pytest.mark.slow
def test_quick_prints_the_rates_and_what_they_imply():
    proc = _bench("--quick", "--device", "cpu", "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == KEYS
    assert (result["size"], result["batch"], result["workers"], result["steps"]) == (32, 4, 1, 2)
    assert result["render_set"] == ["size=32", "physics.enabled=false"] and result["physics"] is False
    delivered, consumed = result["delivered_pairs_per_s"], result["consumed_pairs_per_s"]
    assert delivered > 0 and consumed > 0 and result["startup_s"] > 0
    assert result["per_worker_pairs_per_s"] == pytest.approx(delivered, rel=1e-3)  # one worker
    assert result["gpu_idle_fraction"] == pytest.approx(max(0.0, 1 - delivered / consumed), abs=2e-3)
    assert result["workers_needed"] == pytest.approx(consumed / result["per_worker_pairs_per_s"], abs=0.02)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--workers", "0"], "bench_stream: error: --workers: expected a whole number >= 1, got 0"),
        (["--batch", "1"], "bench_stream: error: --batch: expected >= 2 view pairs (contrastive negatives), got 1"),
        (["--render-set", "size"], "bench_stream: error: --render-set 'size': expected key=value"),
    ],
)
def test_bad_options_are_one_line(args, expected):
    proc = _bench(*args, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == expected
