"""Console output shared by the CLIs: ``logging`` set-up, plain progress lines, files readable by others.

- `setup_logging(prog, verbosity, rank)`: messages of the ``synthssl`` loggers go to
  stderr as ``prog: message``; verbosity -1 (``--quiet``) shows warnings and errors
  only, 0 progress lines too, 1 (``--verbose``) debug detail. Only rank 0 prints
  unless ``all_ranks`` (then each line says its rank). A task of a SLURM array of
  several tasks says its index: ``prog [task 3]: message`` (`array_task_label`).
- `ProgressLine`: off a terminal (CI, SLURM logs), progress is one plain line per
  report -- done/total, rate, ETA -- instead of ``\\r`` bar updates.
- `progress(items, desc)`: iterate with a tqdm bar on a terminal, or with about ten
  plain `ProgressLine` lines on stderr elsewhere (none sooner than 2 s after the last).
- `publish_mode(path)`: give a freshly written temporary file the mode the user's
  umask implies (``mkstemp`` creates 0600) before it is renamed into place.
- `one_line(exc)`: the last non-empty line of an exception's message (errors
  re-raised by DataLoader workers carry the worker's traceback text before it).

NumPy-free and torch-free.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Iterator, Mapping, Optional, Sequence, TextIO, TypeVar

T = TypeVar("T")

LOGGER_NAME = "synthssl"


class _RankFilter(logging.Filter):
    def __init__(self, rank: int, all_ranks: bool):
        super().__init__()
        self.rank, self.all_ranks = rank, all_ranks

    def filter(self, record: logging.LogRecord) -> bool:
        if self.all_ranks:
            record.msg = f"[rank {self.rank}] {record.msg}"
            return True
        return self.rank == 0


def array_task_label(environ: Optional[Mapping[str, str]] = None) -> str:
    """``'task 3'`` in task 3 of a SLURM array of several tasks (``SLURM_ARRAY_TASK_ID``,
    ``SLURM_ARRAY_TASK_COUNT`` > 1, as sbatch sets them); ``''`` anywhere else."""
    environ = os.environ if environ is None else environ
    task, count = environ.get("SLURM_ARRAY_TASK_ID", ""), environ.get("SLURM_ARRAY_TASK_COUNT", "")
    return f"task {task}" if task.isdigit() and count.isdigit() and int(count) > 1 else ""


def setup_logging(
    prog: str, verbosity: int = 0, rank: int = 0, all_ranks: bool = False, stream: Optional[TextIO] = None
) -> logging.Logger:
    """Route the ``synthssl`` loggers to ``stream`` (stderr) as ``prog: message`` (``prog [task 3]:
    message`` in a task of a SLURM array, `array_task_label`); returns the root one."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    label = array_task_label()
    handler.setFormatter(logging.Formatter(f"{prog}{f' [{label}]' if label else ''}: %(message)s"))
    handler.addFilter(_RankFilter(rank, all_ranks))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO)
    return logger


def is_tty(stream: Optional[TextIO] = None) -> bool:
    """True when ``stream`` (stderr) is a terminal: only then are ``\\r`` progress bars used."""
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def format_eta(seconds: float) -> str:
    """``H:MM:SS`` for a non-negative number of seconds, '?' when unknown."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def plural(unit: str) -> str:
    """English plural of a unit name: 'batch' -> 'batches', 'scene' -> 'scenes'."""
    return unit + ("es" if unit.endswith(("s", "sh", "ch", "x")) else "s")


class ProgressLine:
    """Rate and ETA of ``total`` units of work started at ``done`` (for plain progress lines)."""

    def __init__(self, total: int, done: int = 0, unit: str = "step"):
        self.total, self.start_done, self.unit = int(total), int(done), unit
        self.t0 = time.perf_counter()

    def line(self, done: int, extra: str = "") -> str:
        """``'{unit} 12/40 <extra> 3.1 {units}/s ETA 0:00:09'`` ({units}: `plural` of unit)."""
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        rate = (done - self.start_done) / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        parts = [f"{self.unit} {done}/{self.total}"] + ([extra] if extra else [])
        parts += [f"{rate:.3g} {plural(self.unit)}/s", f"ETA {format_eta(eta)}"]
        return "  ".join(parts)


def progress(
    items: Sequence[T],
    desc: Optional[str],
    unit: str = "batch",
    lines: int = 10,
    stream: Optional[TextIO] = None,
    min_interval: float = 2.0,
) -> Iterator[T]:
    """Iterate over ``items``; ``desc`` None: silently. On a terminal a tqdm bar; elsewhere at
    most about ``lines`` plain lines ``'desc: batch 12/40  3.1 batches/s  ETA 0:00:09'``, each
    printed once the item before it has been processed: one per ``len(items) / lines`` items,
    but none sooner than ``min_interval`` seconds after the previous one, and always the last
    (so work done in under ``min_interval`` seconds prints one line)."""
    stream = stream if stream is not None else sys.stderr
    if desc is None:
        yield from items
        return
    if is_tty(stream):
        from tqdm import tqdm

        yield from tqdm(items, desc=desc, leave=False, file=stream)
        return
    total = len(items)
    every, report = max(1, math.ceil(total / max(lines, 1))), ProgressLine(total, unit=unit)
    last = report.t0
    for i, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if i == total or (i % every == 0 and now - last >= min_interval):
            print(f"{desc}: {report.line(i)}", file=stream, flush=True)
            last = now


def user_file_mode() -> int:
    """``0o666 & ~umask``: the mode ``open()`` would give a new file (typically 0644)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def publish_mode(path: str | os.PathLike) -> None:
    """chmod a temporary file (mkstemp: 0600) to the user's umask-implied mode before renaming it."""
    os.chmod(path, user_file_mode())


def one_line(exc: BaseException) -> str:
    """The last non-empty line of ``str(exc)`` without a leading ``module.ErrorType: `` prefix."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    last = lines[-1]
    head, sep, rest = last.partition(": ")
    if sep and "." in head and " " not in head and head.split(".")[-1][:1].isupper():
        return rest
    return last


__all__ = [
    "setup_logging",
    "array_task_label",
    "is_tty",
    "format_eta",
    "ProgressLine",
    "user_file_mode",
    "publish_mode",
    "one_line",
    "LOGGER_NAME",
]
