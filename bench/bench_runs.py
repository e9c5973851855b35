"""Training runs for the benchmarks: reuse what is finished, resume what is not, never mix.

`train_run` runs ``train-ssl CONFIG overrides...`` in a subprocess into ``run/``:

- a finished run (``export/backbone.json`` with the requested steps) whose recorded
  settings equal today's is reused;
- an unfinished one (``checkpoint.pt``) is resumed;
- a run recorded with other settings -- other options, or a shipped config or a method
  default that changed since -- raises `SettingsMismatch`: the caller refuses it
  (one line, exit 2) rather than mix it into a new result. A key the record lacks because
  it was added to the config after the run was recorded is no difference when today's
  value is that key's default: a config without the key loads to exactly that value
  (`recorded_settings_match`).

The settings are the fully resolved training config (`resolved_settings`: every
section and the method's typed options with their defaults), without the run's own
paths; they are recorded in ``run/bench_train.json`` before training starts. Training
seconds over all attempts accumulate in ``run/train_seconds.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

SETTINGS_FILE = "bench_train.json"
SECONDS_FILE = "train_seconds.json"


class SettingsMismatch(ValueError):
    """``run/`` holds a run trained with other settings (the message names the run)."""


def _resolved_tree(config: Path, overrides: list[str]) -> dict:
    """The whole resolved config of ``config`` + ``overrides`` (the method's options included, with
    their defaults). Raises `synthssl.train.config.ConfigError` on a bad key or value."""
    from synthssl.train.config import load_config, to_dict

    return to_dict(load_config(config, overrides))


def _settings_of(tree: dict) -> dict:
    """A resolved config without the run's own paths (``data.shards``, ``train.out``)."""
    settings = {**tree, "data": dict(tree["data"]), "train": dict(tree["train"])}
    settings["data"].pop("shards")
    settings["train"].pop("out")
    return settings


def resolved_settings(config: Path, overrides: list[str]) -> dict:
    """The resolved config of ``config`` + ``overrides`` minus ``data.shards`` and
    ``train.out``. Raises `synthssl.train.config.ConfigError` on a bad key or value."""
    return _settings_of(_resolved_tree(config, overrides))


def added_keys(known: dict, settings: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of ``settings`` that ``known`` lacks (a section ``known`` lacks counts as one path)."""
    found: list[tuple[str, ...]] = []
    for key, value in settings.items():
        if key not in known:
            found.append((*prefix, key))
        elif isinstance(value, dict) and isinstance(known[key], dict):
            found += added_keys(known[key], value, (*prefix, key))
    return found


def _without(tree: dict, paths: list[tuple[str, ...]]) -> dict:
    """A copy of ``tree`` without the keys at ``paths`` (copied only along those paths)."""
    out = dict(tree)
    for path in paths:
        node = out
        for key in path[:-1]:
            node[key] = dict(node[key])
            node = node[key]
        node.pop(path[-1])
    return out


def recorded_settings_match(known: dict, config: Path, overrides: list[str]) -> bool:
    """Whether a run recorded with settings ``known`` was trained as ``config`` + ``overrides`` trains today.

    Every key the record holds must have today's value. A key the record lacks (one added to the
    config since) must sit at its default today: with the key left out, today's config resolves
    to the same settings, so the recorded run, whose config had no such key, trained that way.
    """
    from synthssl.train.config import parse_config, to_dict

    tree = _resolved_tree(config, overrides)
    settings = _settings_of(tree)
    if known == settings:
        return True
    added = added_keys(known, settings)
    if not added or _without(settings, added) != known:
        return False
    return _settings_of(to_dict(parse_config(_without(tree, added)))) == settings


def settings_differences(known: dict, settings: dict, limit: int = 3) -> str:
    """The first ``limit`` dotted keys whose recorded value differs, e.g. ``train.ema_decay: absent -> 0.0``."""
    diffs: list[str] = []

    def walk(a: object, b: object, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k, _ABSENT), b.get(k, _ABSENT), f"{key}.{k}" if key else k)
        elif a != b:
            diffs.append(f"{key}: {a!r} -> {b!r}")

    walk(known, settings, "")
    more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()


def finished_export(run: Path, steps: int) -> bool:
    """Whether ``run/export`` holds a backbone trained for exactly ``steps`` steps."""
    meta = run / "export" / "backbone.json"
    return meta.is_file() and json.loads(meta.read_text()).get("steps") == steps


def train_run(
    config: Path, overrides: list[str], run: Path, steps: int, *, env: Optional[dict[str, str]] = None
) -> float:
    """Train (reuse, or resume) one run; returns its training seconds over all attempts.

    Raises `SettingsMismatch` for a run made with other settings, `ConfigError` for bad
    overrides and `RuntimeError` (last stderr lines) when training fails.
    """
    record, timing = run / SETTINGS_FILE, run / SECONDS_FILE
    settings = resolved_settings(config, overrides)
    known = json.loads(record.read_text())["settings"] if record.is_file() else None
    if known is not None and recorded_settings_match(known, config, overrides):
        settings = known  # the record stays as written
    if known != settings and (known is not None or finished_export(run, steps)):
        what = f"{record}: {settings_differences(known, settings)}" if known is not None else "not recorded"
        raise SettingsMismatch(f"{run} was trained with other settings ({what})")
    spent = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
    if finished_export(run, steps):
        return spent
    run.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"settings": settings}, indent=1) + "\n")
    cmd = [sys.executable, "-m", "synthssl.train.cli", str(config), *overrides]
    if (run / "checkpoint.pt").is_file():
        cmd.append("--resume")
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env if env is not None else dict(os.environ),
    )
    spent += time.perf_counter() - t0
    timing.write_text(json.dumps({"seconds": spent}) + "\n")
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"training {run} failed (exit {proc.returncode}):\n{tail}")
    return spent
