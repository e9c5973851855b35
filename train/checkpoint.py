"""Training checkpoints: one file ``<run>/checkpoint.pt``, written atomically.

Contents: ``format_version`` (`FORMAT_VERSION`), ``step`` (optimiser steps done),
``method`` (state_dict: encoder, heads, buffers such as queues; every tensor under one
name, the encoder's as ``encoder.trunk.*``), ``optimizers`` (name -> state_dict; "main"
plus each `ExtraOptimizer`), ``scaler`` (GradScaler state or None), ``config``
(resolved, plain dict), ``world_size``, ``shards`` (fingerprint of each shard trained on
-- ``{}`` on photo pairs: a resume on replaced shards is refused) and
``divergence_reference`` (early loss values of `synthssl.train.guards.DivergenceGuard`),
with ``train.ema_decay`` ``weight_average``
(`synthssl.train.momentum.weight_average.WeightAverage` state), and with ``data.stream``
``stream`` (`synthssl.train.data.stream.SceneStream.state`: the render config, its hash and
render id, and ``position``, the scenes of each rank that the steps done consumed; a resume
starts the render workers there and refuses a render config that renders other scenes). Only
tensors and plain Python values, so it loads with ``weights_only=True``. Random state needs no saving: every
step re-seeds from (seed, rank, step), and the data position is a function of the step
(`ResumableSampler`), so ``--resume`` replays exactly what an uninterrupted run does.

A change of these contents, or of the config layout, that an older checkpoint cannot
resume under bumps `FORMAT_VERSION` (and is written in CHANGELOG.md); `load_checkpoint`
refuses any other version in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from synthssl.train.config import ConfigError
from synthssl.train.export import atomic_torch_save

CHECKPOINT_NAME = "checkpoint.pt"
#: The layout of checkpoint.pt and of the config it holds (see the module docstring).
FORMAT_VERSION = 1


def load_method_state(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a checkpoint's ``method`` state_dict strictly; RuntimeError naming the missing/unexpected keys."""
    result = module.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise RuntimeError(f"checkpoint: unexpected keys {result.unexpected_keys[:8]}")
    if result.missing_keys:
        raise RuntimeError(
            f"checkpoint: missing keys {result.missing_keys[:8]} (a checkpoint of another method/config?)"
        )


def save_checkpoint(
    run_dir: str | Path,
    *,
    step: int,
    method: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    scaler: Any,
    config: dict,
    world_size: int,
    extra: dict | None = None,
) -> Path:
    """Write <run_dir>/checkpoint.pt atomically; returns its path.

    ``extra``: further plain-typed entries (the trainer's shard fingerprints and
    divergence reference). A write that fails (full disk, no permission) raises
    OutputWriteError naming the file and the cause; the temporary file is removed
    and an earlier checkpoint stays as it was.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    state = {
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "method": {k: v.detach() for k, v in method.state_dict().items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "scaler": scaler.state_dict() if scaler is not None else None,
        "config": config,
        "world_size": int(world_size),
        **(extra or {}),
    }
    atomic_torch_save(state, path)
    return path


def load_checkpoint(run_dir: str | Path, map_location: Any = "cpu", option: str = "--resume") -> dict:
    """Read <run_dir>/checkpoint.pt (or the checkpoint file `run_dir` names): FileNotFoundError naming
    `option` when absent, ConfigError when it is not a checkpoint or of another `FORMAT_VERSION`.

    The file is opened once: a checkpoint replaced meanwhile (`save_checkpoint` writes a temporary
    file, then renames it) is read whole, as it was when opened.
    """
    path = Path(run_dir)
    path = path if path.is_file() else path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{option}: no {CHECKPOINT_NAME} in {run_dir} (train.out); "
            f"start without --resume or point train.out at an earlier run"
            if option == "--resume"
            else f"{option}: no {CHECKPOINT_NAME} in {run_dir}; the run has not written its first checkpoint yet "
            f"(train.checkpoint_every), or this is not a run folder"
        )
    try:
        # Weights-only: a checkpoint holds tensors and plain values, so loading one from
        # someone else can never run code.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or damaged files
        raise ConfigError(f"{option}: {path} cannot be read as a synthssl checkpoint ({exc})") from exc
    version = state.get("format_version") if isinstance(state, dict) else None
    if version != FORMAT_VERSION:
        found = f"format {version}" if version is not None else "no format version"
        verb = "resumes" if option == "--resume" else "reads"
        raise ConfigError(
            f"{option}: {path} has {found}; this synthssl {verb} checkpoint format {FORMAT_VERSION} only; "
            f"start a new run (--overwrite, or another train.out)"
        )
    return state
