"""Run folders (``train.out``): one run per folder, one writer at a time, never silently replaced.

- One writer: a run holds the folder's lock (`synthssl.core.folder_lock.FolderLock`,
  ``<out>/.synthssl.lock`` naming host and PID) from before its checks until it exits; a second
  start into the folder, with or without ``--resume``, is refused naming the holder. A lock whose
  process is gone is stale and taken over.
- One run: a folder *holds a run* when it has a checkpoint or an export of an earlier
  ``train-ssl`` (a run killed before its first checkpoint left nothing to resume).
  Starting again there without ``--resume`` would truncate its metrics and overwrite
  its checkpoint, so `check_run_folder` refuses, naming the
  choices: ``--resume``, another ``train.out``, or ``--overwrite``, which moves the old
  run aside (``<out>.replaced-<time>``) and never deletes anything. ``--resume`` where no
  checkpoint is refused before anything is built.

`RunFolderClaim` does both, in that order, for the command line and `synthssl.train.train`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from synthssl.core.folder_lock import FolderLock
from synthssl.train.checkpoint import CHECKPOINT_NAME
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
    if resume and not (run_dir / CHECKPOINT_NAME).is_file():
        what = (
            f"holds no {CHECKPOINT_NAME} (the run there stopped before its first checkpoint, see "
            f"train.checkpoint_every); start it again without --resume"
            if (run_dir / "config.yaml").is_file()
            else "holds no run; start one without --resume, or give train.out=RUN of an earlier run"
        )
        raise ConfigError(f"--resume: {run_dir} (train.out) {what}")
    if resume or not found:
        return False
    if not overwrite:
        raise ConfigError(
            f"train.out: {run_dir} already holds a run ({', '.join(found)}); continue it with "
            f"--resume, start a new one with another train.out=DIR, or pass --overwrite to move "
            f"the old run aside to {run_dir}.replaced-<time> (nothing is deleted)"
        )
    return True


class RunFolderClaim:
    """The claim of one run on its folder, for a ``with`` block around the whole run.

    On entry: take the folder's lock (when ``holder``: rank 0 of a distributed run; the other
    ranks only check), then `check_run_folder`. `replace_old_run` moves an old run aside after the
    new one's pre-flight checks passed (``--overwrite``); the lock stays held throughout. On exit
    (also on an exception or Ctrl-C) the lock is released, and a folder the claim created is
    removed again when nothing was written into it.
    """

    def __init__(self, run_dir: str | Path, *, resume: bool, overwrite: bool, holder: bool = True):
        self.run_dir = Path(run_dir)
        self.resume, self.overwrite = resume, overwrite
        advice = "wait for it to finish, or stop it (its last checkpoint is kept), or give another train.out=DIR"
        self.lock: Optional[FolderLock] = (
            FolderLock(self.run_dir, "train.out", advice, kind="run folder") if holder else None
        )
        self.move = False

    def __enter__(self) -> "RunFolderClaim":
        if self.resume and self.overwrite:
            check_run_folder(self.run_dir, resume=True, overwrite=True)  # refuses, touching nothing
        if self.resume and not self.run_dir.is_dir():
            check_run_folder(self.run_dir, resume=True, overwrite=False)  # refuses before creating it
        if self.lock is not None:
            self.lock.acquire()
        try:
            self.move = check_run_folder(self.run_dir, resume=self.resume, overwrite=self.overwrite)
        except BaseException:
            self.release()
            raise
        return self

    def replace_old_run(self) -> Optional[Path]:
        """``--overwrite``: rename the old run to `aside_name` (lock holder only) and lock the fresh folder;
        returns where the old run went (None when there was none to move, or on other ranks)."""
        if not self.move or self.lock is None:
            return None
        old = self.lock
        target = old.rename_folder(aside_name(self.run_dir))
        self.lock = FolderLock(self.run_dir, "train.out", old.advice, kind="run folder").acquire()
        old.release()
        return target

    def release(self) -> None:
        """Give the folder back (idempotent)."""
        if self.lock is not None:
            self.lock.release()
            self.lock.remove_folder_if_unused()

    def __exit__(self, *exc: object) -> None:
        self.release()


def config_run_folder(config_path: Optional[str | Path]) -> Optional[Path]:
    """The run folder a config file belongs to: ``DIR`` for ``DIR/config.yaml`` beside a checkpoint, else None."""
    if config_path is None:
        return None
    path = Path(config_path)
    if path.name == "config.yaml" and (path.parent / "checkpoint.pt").is_file():
        return path.parent
    return None


__all__ = [
    "RUN_MARKERS",
    "RunFolderClaim",
    "run_markers",
    "check_run_folder",
    "aside_name",
    "config_run_folder",
]
