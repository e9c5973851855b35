"""Run-time guards of the training loop: divergence, preemption signals, shard fingerprints.

- `DivergenceGuard`: a non-finite loss term, or a term whose magnitude exceeds
  ``factor`` times its median over the first ``window`` logged steps, stops the run
  with `DivergenceError` naming the term and the step (before any checkpoint of the
  diverged weights is written).
- `StopSignals`: SIGTERM and SIGUSR1 (sent by SLURM before a job's time runs out)
  set a flag that the loop reads at the next step boundary, to checkpoint and exit;
  `ignore_stop_signals` keeps DataLoader workers alive through them.
- `shard_fingerprints`: what a checkpoint records about the shards it trained on, so
  that a ``--resume`` on replaced shards is refused.
"""

from __future__ import annotations

import math
import os
import signal
import statistics
import threading
from typing import Optional, Sequence

#: Magnitudes below this count as this much when comparing with the early median.
MEDIAN_FLOOR = 0.1


class DivergenceError(RuntimeError):
    """Training diverged: a loss term is not finite or far above its early values."""


class DivergenceGuard:
    """See the module docstring. ``factor`` 0 disables the bound (non-finite values always stop)."""

    def __init__(self, factor: float, window: int, reference: Optional[dict[str, list[float]]] = None):
        self.factor, self.window = float(factor), int(window)
        self.early: dict[str, list[float]] = {k: list(v) for k, v in (reference or {}).items()}

    def state(self) -> dict[str, list[float]]:
        """The early values seen so far (saved in the checkpoint: plain lists of floats)."""
        return {k: list(v) for k, v in self.early.items()}

    def check(self, step: int, terms: dict[str, float]) -> None:
        """Raise DivergenceError if a term of step ``step`` is non-finite or beyond the bound."""
        for key, value in sorted(terms.items()):
            if not math.isfinite(value):
                raise DivergenceError(
                    f"step {step}: loss term '{key}' is {value}; training diverged (the last "
                    f"good checkpoint is kept); lower optim.lr or set optim.grad_clip"
                )
        for key, value in sorted(terms.items()):
            seen = self.early.setdefault(key, [])
            if len(seen) < self.window:
                seen.append(float(value))
                continue
            if self.factor <= 0:
                continue
            median = statistics.median(seen)
            bound = self.factor * max(abs(median), MEDIAN_FLOOR)
            if abs(value) > bound:
                raise DivergenceError(
                    f"step {step}: loss term '{key}' is {value:.4g}, above {self.factor:g} x its early median "
                    f"{median:.4g} (train.divergence_factor); training diverged (the last good checkpoint is "
                    f"kept); lower optim.lr or set optim.grad_clip"
                )


class StopSignals:
    """While installed, SIGTERM / SIGUSR1 set `received` (the signal's name) instead of ending the process."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.received: Optional[str] = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        self.received = signal.Signals(signum).name

    def install(self) -> "StopSignals":
        """Take over the signals (only the main thread can; elsewhere this is a no-op)."""
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Give the signals back their previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def ignore_stop_signals(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: the worker ignores `StopSignals.SIGNALS` (SIGTERM, SIGUSR1).

    SLURM signals every process of a job step (srun passing a signal on, ``scancel --signal``,
    ``--signal=USR1@120``, a preemption's SIGTERM), DataLoader workers included; a worker killed
    by one would end the run ("DataLoader worker ... is killed by signal") before the main process
    reached its checkpoint. The main process stops its workers itself, and they exit when it dies.
    """
    for sig in StopSignals.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def shard_fingerprints(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
    """{shard file: 'B bytes, sha256 H'} for every shard under ``paths`` (flat or nested folders).

    The checksum comes from the render folder's manifest.json (written once when the shard
    was finished; entries are named by their path relative to that folder); without one, the
    size identifies the file.
    """
    from synthssl.dataset.layout import find_shard_roots
    from synthssl.dataset.manifest import read_manifest

    out: dict[str, str] = {}
    for root, names in find_shard_roots(list(paths)):
        try:
            manifest = read_manifest(root) or {}
        except ValueError:
            manifest = {}
        listed = {e.get("file"): e for e in manifest.get("shards", []) if isinstance(e, dict)}
        for name in names:
            shard = root / name
            digest = listed.get(name, {}).get("sha256", "unknown")
            out[str(shard)] = f"{shard.stat().st_size} bytes, sha256 {digest}"
    return out


def fingerprint_changes(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """Shard files whose fingerprint differs, or that were added or removed."""
    return sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))


__all__ = [
    "DivergenceError",
    "DivergenceGuard",
    "StopSignals",
    "shard_fingerprints",
    "fingerprint_changes",
    "MEDIAN_FLOOR",
]
