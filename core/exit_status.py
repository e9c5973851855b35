"""How a child process ended, in words, for the one-line error of a worker that died."""

from __future__ import annotations

import signal


def describe_exit(code: int | None) -> str:
    """How a process ended, from its exit code: 'killed by signal 9 (SIGKILL)', 'exited with status 1'
    (negative codes are signals, as `subprocess` and `multiprocessing` report them)."""
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


__all__ = ["describe_exit"]
