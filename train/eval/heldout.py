"""Whether the dense probes' shards were held out from a backbone's training.

A backbone exported by ``train-ssl`` sits in ``<run>/export``, and ``<run>/config.yaml`` names
the shards it trained on (``data.shards``, ``data.val_fraction``). The probe's shards are *held
out* when none of their renders (render ids, `synthssl.dataset.ShardCollection.render_ids`; the
resolved folder paths when a side cannot be opened) is among the training ones, or when they
are the same renders but the probe reads the ``val`` split that training left out (the same
``val_fraction``). A backbone without such a run folder (a plain state_dict, random init) is
"unknown"; random init has seen no data at all and is not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from synthssl.core.yaml_numbers import safe_load

__all__ = ["HeldOut", "training_data", "held_out"]


@dataclass(frozen=True)
class HeldOut:
    """One backbone's verdict: ``held_out`` True / False / None (unknown) and the reason in words."""

    held_out: Optional[bool]
    reason: str


def training_data(source: str | Path) -> Optional[tuple[list[str], float]]:
    """(data.shards, data.val_fraction) of the run whose export ``source`` is (the export folder or its
    backbone.pt), from ``<run>/config.yaml``; None when there is no such run folder."""
    path = Path(source)
    export = path.parent if path.suffix == ".pt" else path
    config = export.parent / "config.yaml"
    if export.name != "export" or not config.is_file():
        return None
    try:
        data = (safe_load(config.read_text()) or {}).get("data") or {}
    except (OSError, ValueError, AttributeError):
        return None
    shards = data.get("shards") or []
    return [str(s) for s in shards], float(data.get("val_fraction") or 0.0)


def _renders(paths: Sequence[str | Path]) -> Optional[set[str]]:
    """The render ids of ``paths`` (None when they cannot be opened or carry no render id)."""
    from synthssl.dataset.errors import ShardFormatError
    from synthssl.dataset.reader import ShardCollection

    try:
        ids = set(ShardCollection(list(paths)).render_ids)
    except (OSError, ValueError, ShardFormatError):
        return None
    return None if not ids or "" in ids else ids


def held_out(
    probe_shards: Sequence[str | Path], source: str | Path, split: Optional[str], val_fraction: float
) -> HeldOut:
    """Whether ``probe_shards`` (read with ``split`` / ``val_fraction``) were held out from the training of
    the backbone exported at ``source``; see the module docstring."""
    trained = training_data(source)
    if trained is None:
        return HeldOut(None, "unknown: no run folder with config.yaml beside this export")
    shards, train_val_fraction = trained
    if not shards:
        return HeldOut(True, "held out: the run trained on photos only")
    probe_ids, train_ids = _renders(probe_shards), _renders(shards)
    if probe_ids is not None and train_ids is not None:
        shared = bool(probe_ids & train_ids)
    else:
        resolved = {Path(p).resolve() for p in shards}
        shared = any(Path(p).resolve() in resolved for p in probe_shards)
    if not shared:
        return HeldOut(True, "held out: none of these renders was in its training data")
    if split == "val" and train_val_fraction > 0 and abs(train_val_fraction - val_fraction) < 1e-12:
        return HeldOut(True, f"held out: the 'val' split (val_fraction {val_fraction:g}) its training left out")
    return HeldOut(False, "not held out: it trained on these renders")
