"""Run folders (``train.out``): one run per folder, never silently replaced.

A folder *holds a run* when it has a checkpoint or an export of an earlier
``train-ssl`` (a run killed before its first checkpoint left nothing to resume).
Starting again there without ``--resume`` would truncate its metrics and overwrite
its checkpoint, so `check_run_folder` refuses, naming the
choices: ``--resume``, another ``train.out``, or ``--overwrite``, which moves the old
run aside (``<out>.replaced-<time>``) and never deletes anything.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from synthssl.train.config import ConfigError

#: Files whose presence means a folder holds a run.
RUN_MARKERS = ("checkpoint.pt", "export/backbone.pt")


def run_markers(run_dir: str | Path) -> list[str]:
    """The `RUN_MARKERS` present in ``run_dir`` (empty: the folder holds no run)."""
    run_dir = Path(run_dir)
    return [m for m in RUN_MARKERS if (run_dir / m).is_file()]


def aside_name(run_dir: Path) -> Path:
    """A free sibling name for moving ``run_dir`` aside: ``<name>.replaced-YYYYmmdd-HHMMSS[-k]``."""
    base = run_dir.with_name(f"{run_dir.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
    candidate, k = base, 1
    while candidate.exists():
        candidate, k = base.with_name(f"{base.name}-{k}"), k + 1
    return candidate


def check_run_folder(run_dir: str | Path, *, resume: bool, overwrite: bool) -> bool:
    """Refuse (ConfigError) to start a fresh run where one exists; True if an old run must be moved aside."""
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise ConfigError(
            "--resume and --overwrite exclude each other: continue the run, or move it aside and start again"
        )
    found = run_markers(run_dir)
    if resume or not found:
        return False
    if not overwrite:
        raise ConfigError(
            f"train.out: {run_dir} already holds a run ({', '.join(found)}); continue it with "
            f"--resume, start a new one with another train.out=DIR, or pass --overwrite to move "
            f"the old run aside to {run_dir}.replaced-<time> (nothing is deleted)"
        )
    return True


def move_aside(run_dir: str | Path) -> Path:
    """Rename ``run_dir`` to a free `aside_name`; returns the new path (nothing is deleted)."""
    run_dir = Path(run_dir)
    target = aside_name(run_dir)
    run_dir.rename(target)
    return target


def config_run_folder(config_path: Optional[str | Path]) -> Optional[Path]:
    """The run folder a config file belongs to: ``DIR`` for ``DIR/config.yaml`` beside a checkpoint, else None."""
    if config_path is None:
        return None
    path = Path(config_path)
    if path.name == "config.yaml" and (path.parent / "checkpoint.pt").is_file():
        return path.parent
    return None


__all__ = ["RUN_MARKERS", "run_markers", "check_run_folder", "move_aside", "aside_name", "config_run_folder"]
