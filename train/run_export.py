"""A run's export, ``<run>/export``: written by the trainer at the end and by ``train-ssl export`` at any time.

`write_export` writes what the export format holds (`synthssl.train.export.save_backbone`:
backbone.pt, heads.pt when the method offers heads, backbone.json) from a live method, with the
weight average applied when ``train.ema_decay`` keeps one. Writers of one export folder take
turns: each holds the folder's `FolderLock` while it writes, waiting up to `EXPORT_WAIT_S` for
another.

`export_checkpoint` does the same from a checkpoint file, without touching the run: it reads the
checkpoint once (the trainer replaces it by renaming a complete temporary file, so a running
run can be exported), rebuilds the method from the config the checkpoint holds, loads its
weights (and weight average) and writes the export. An export folder that already holds an
export of *more* steps is never replaced by an older one.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from torch import nn

from synthssl.core.folder_lock import FolderLock
from synthssl.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, load_method_state
from synthssl.train.config import ConfigError, TrainingConfig, parse_config
from synthssl.train.data.batch import IMAGENET_MEAN, IMAGENET_STD
from synthssl.train.export import method_heads, save_backbone
from synthssl.train.methods.base import Method, MethodContext
from synthssl.train.momentum.weight_average import WeightAverage

__all__ = [
    "EXPORT_DIR",
    "EXPORT_WAIT_S",
    "ExportWritten",
    "NewerExportError",
    "weight_average_of",
    "write_export",
    "find_checkpoint",
    "method_from_checkpoint",
    "export_checkpoint",
]

#: The export folder inside a run folder.
EXPORT_DIR = "export"
#: How long a writer of an export folder waits for another one (seconds).
EXPORT_WAIT_S = 300.0


class NewerExportError(ValueError):
    """The export folder holds an export of more steps than the checkpoint being exported."""


@dataclass(frozen=True)
class ExportWritten:
    """What `export_checkpoint` wrote: the export folder, its backbone.pt, the checkpoint and its step."""

    folder: Path
    backbone: Path
    checkpoint: Path
    step: int
    heads: bool


def weight_average_of(method: Method, decay: float) -> Optional[WeightAverage]:
    """The EMA of the encoder and the exportable heads that the export writes (``decay`` > 0), else None."""
    if decay <= 0:
        return None
    modules: dict[str, nn.Module] = {"encoder": method.encoder}
    heads = method_heads(method)
    if heads is not None:
        modules["heads"] = heads
    return WeightAverage(modules, decay)


def _export_steps(folder: Path) -> Optional[int]:
    """The ``steps`` of the export in ``folder`` (None when there is none or it cannot be read)."""
    try:
        return int(json.loads((folder / "backbone.json").read_text())["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_export(
    method: Method,
    cfg: TrainingConfig,
    steps: int,
    folder: str | Path,
    average: Optional[WeightAverage] = None,
    *,
    keep_newer: bool = False,
    wait_s: float = EXPORT_WAIT_S,
) -> Path:
    """Write the export of ``method`` after ``steps`` steps into ``folder``; returns backbone.pt.

    average: written instead of the live weights when given. keep_newer: raise `NewerExportError`
    instead of replacing an export of more steps. Raises `FolderInUseError` when another writer
    holds the folder for longer than ``wait_s``.
    """
    folder = Path(folder)
    with FolderLock(folder, "out", wait_s=wait_s):
        existing = _export_steps(folder)
        if keep_newer and existing is not None and existing > steps:
            raise NewerExportError(
                f"out: {folder} already holds the export of step {existing}, newer than this checkpoint's "
                f"step {steps}; it is kept; give another out=DIR"
            )
        with average.applied() if average is not None else contextlib.nullcontext():
            return save_backbone(
                method.encoder,
                folder,
                arch=cfg.model.arch,
                small_stem=cfg.model.small_stem,
                image_size=cfg.data.image_size,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                method=cfg.method.name,
                steps=steps,
                heads=method_heads(method),
            )


def find_checkpoint(run: str | Path, checkpoint: Optional[str | Path] = None) -> Path:
    """The checkpoint file to export: ``run``'s checkpoint.pt, or ``checkpoint`` (a file, a folder holding
    checkpoint.pt, or a name inside ``run``). FileNotFoundError (one line) naming what is missing."""
    run = Path(run)
    if checkpoint is None:
        if not run.is_dir():
            raise FileNotFoundError(f"run: {run} is not a run folder (train.out of a train-ssl run)")
        path = run / CHECKPOINT_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"run: {run} holds no {CHECKPOINT_NAME} yet; the run writes its first one after "
                f"train.checkpoint_every steps (or at Ctrl-C / SIGTERM)"
            )
        return path
    given = Path(checkpoint)
    for candidate in (given, run / given):
        if candidate.is_file():
            return candidate
        if candidate.is_dir() and (candidate / CHECKPOINT_NAME).is_file():
            return candidate / CHECKPOINT_NAME
    raise FileNotFoundError(f"checkpoint: {checkpoint} is not a checkpoint file (nor one inside {run})")


def method_from_checkpoint(state: dict, path: Path) -> tuple[TrainingConfig, Method]:
    """The config a checkpoint holds and its method rebuilt (CPU) with the checkpoint's weights."""
    from synthssl.train.methods.registry import method_class

    try:
        cfg = parse_config(state["config"])
    except ConfigError as exc:
        raise ConfigError(f"checkpoint: the config in {path} does not build ({exc})") from None
    ctx = MethodContext(arch=cfg.model.arch, small_stem=cfg.model.small_stem, image_size=cfg.data.image_size, views=2)
    method = method_class(cfg.method.name)(cfg.method, ctx)
    try:
        load_method_state(method, state["method"])
    except RuntimeError as exc:
        raise ConfigError(f"checkpoint: {path}: {exc}") from None
    return cfg, method


def export_checkpoint(
    run: str | Path, checkpoint: Optional[str | Path] = None, out: Optional[str | Path] = None
) -> ExportWritten:
    """Export a checkpoint of ``run`` (the latest, or ``checkpoint``) to ``out`` (default ``run/export``).

    Raises FileNotFoundError / ConfigError for a missing or foreign checkpoint, `NewerExportError`,
    `FolderInUseError` or `OutputWriteError` (each with a one-line message).
    """
    path = find_checkpoint(run, checkpoint)
    state = load_checkpoint(path, map_location="cpu", option="checkpoint")
    cfg, method = method_from_checkpoint(state, path)
    average = weight_average_of(method, cfg.train.ema_decay)
    if average is not None:
        average.load_state_dict(state["weight_average"])
    step = int(state["step"])
    folder = Path(out) if out is not None else Path(run) / EXPORT_DIR
    pt = write_export(method, cfg, step, folder, average, keep_newer=True)
    return ExportWritten(folder, pt, path, step, method_heads(method) is not None)
