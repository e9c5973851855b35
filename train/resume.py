"""``--resume``: which config a resumed run trains with, and what it may change.

A run folder holds ``config.yaml`` (the resolved config, written when the run starts) and
``checkpoint.pt`` (the state after ``step`` steps, with the config it was trained with).

- `run_config_file`: ``train-ssl --resume train.out=RUN [key=value ...]`` takes its config from
  ``RUN/config.yaml``; the overrides apply on top of it.
- `check_resume` compares the resumed config with the checkpoint's, key by key, before anything
  is built. Keys that only change how the run is carried out (`RESUME_MUTABLE`: logging,
  checkpoint interval, workers, compile, the output folder, the divergence guard) may change;
  ``train.steps`` may change to any number not below the steps done: the run then continues
  to the new length, and everything that follows the run's length (the learning-rate
  schedule, ramps such as DANN's) follows the new ``train.steps`` from the resumed step on,
  as in a run started with it; the steps already done stay as they were trained. Every other
  key would change what was learned so far: each is named, with its value in the checkpoint,
  and the resume is refused. The shards' fingerprints and the number of ranks must match too
  (and a ``data.stream``'s render config hash, checked once its workers have resolved it:
  `synthssl.train.preflight.open_stream`; the number of render workers may change, since the
  scenes do not depend on it).
- Each accepted change is one line (`ResumePlan.changes`), printed in the start-up summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from synthssl.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from synthssl.train.config import ConfigError, TrainingConfig, parse_config, to_dict

__all__ = [
    "RESUME_MUTABLE",
    "ResumePlan",
    "run_config_file",
    "check_resume",
    "config_differences",
]

#: Config keys that may differ between a run and its ``--resume`` (and ``train.steps``, see the module docstring).
RESUME_MUTABLE = (
    "log",
    "eval",
    "train.checkpoint_every",
    "train.export",
    "data.workers",
    "data.prefetch_factor",
    "data.stream_workers",
    "train.compile",
    "train.out",
    "train.divergence_factor",
    "train.divergence_window",
)

#: The advice of every refused resume.
NEW_RUN = "or start a new run from this config (another train.out=DIR, or --overwrite to move the old run aside)"


@dataclass
class ResumePlan:
    """A checked resume: the checkpoint's ``state`` (CPU tensors; the trainer loads and drops it),
    the steps it has done, and one line per config key that changes (``key: old -> new``)."""

    state: Optional[dict]
    steps_done: int
    changes: list[str] = field(default_factory=list)


def run_config_file(run_dir: str | Path) -> Path:
    """``RUN/config.yaml`` of the run a bare ``--resume`` continues; ConfigError (one line) when it holds no run."""
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        found = "does not exist" if not run_dir.exists() else f"holds no run (no config.yaml, no {CHECKPOINT_NAME})"
        if run_dir.is_dir() and (run_dir / CHECKPOINT_NAME).is_file():
            found = "has a checkpoint but no config.yaml"
        raise ConfigError(
            f"--resume: {run_dir} (train.out) {found}; give train.out=RUN of an earlier run, "
            f"or start a new run without --resume"
        )
    return path


def _saved_config(saved: dict) -> dict:
    """A checkpoint's config as today's engine builds it (keys added since it was written get their
    defaults), as a dict; as saved when it no longer builds (then every key that differs is reported)."""
    try:
        return to_dict(parse_config(saved))
    except ConfigError:
        return saved


def config_differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` of every leaf that differs between two config dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += config_differences(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def _mutable(key: str) -> bool:
    return any(key == m or key.startswith(m + ".") for m in RESUME_MUTABLE)


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


def check_resume(cfg: TrainingConfig, world: int, shards: Optional[dict[str, str]] = None) -> ResumePlan:
    """Read ``train.out``'s checkpoint and check ``cfg`` against it (see the module docstring).

    shards: the fingerprints of ``cfg.data.shards`` (`synthssl.train.guards.shard_fingerprints`;
    computed when None). Raises ConfigError (one line) naming every refused key, FileNotFoundError when
    ``train.out`` holds no checkpoint.
    """
    from synthssl.train.guards import fingerprint_changes, shard_fingerprints

    run_dir = Path(cfg.train.out)
    state = load_checkpoint(run_dir, map_location="cpu")  # FileNotFoundError / ConfigError, one line each
    done = int(state["step"])
    differences = config_differences(_saved_config(state["config"]), to_dict(cfg))
    refused = [(k, a, b) for k, a, b in differences if not _mutable(k) and k != "train.steps"]
    if refused:
        named = ", ".join(f"{k} (checkpoint {_show(a)}, now {_show(b)})" for k, a, b in refused)
        undo = " ".join(f"{k}={_show(a)}" for k, a, _ in refused)
        raise ConfigError(
            f"--resume: {len(refused)} key(s) would change what the run in {run_dir} learned in its {done} "
            f"steps: {named}; resume with the checkpoint's values ({undo}), {NEW_RUN}"
        )
    if cfg.train.steps < done:
        raise ConfigError(
            f"--resume: train.steps={cfg.train.steps} is below the {done} steps the run in {run_dir} has "
            f"done; give train.steps >= {done} (or leave it out)"
        )
    if shards is None:
        shards = shard_fingerprints(cfg.data.shards) if cfg.data.shards and not cfg.data.photo_pairs else {}
    changed = fingerprint_changes(state["shards"], shards)
    if changed:
        raise ConfigError(
            f"--resume: the shards differ from those the checkpoint trained on ({changed[0]}"
            f"{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}: replaced, added or "
            f"removed); resume on the original shards, {NEW_RUN}"
        )
    if state["world_size"] != world:
        raise ConfigError(
            f"--resume: the checkpoint was written with {state['world_size']} ranks, this run "
            f"has {world}; resume with the same number of processes"
        )
    changes = [f"{k}: {_show(a)} -> {_show(b)}" for k, a, b in differences]
    return ResumePlan(state, done, changes)
