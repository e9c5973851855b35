"""Backbone export format (a shared contract; keep stable).

``<dir>/backbone.pt``: the plain torchvision ResNet ``state_dict`` (all keys, fc
included as initialised; tensors on CPU, fp32), loadable with ``strict=True`` into
``torchvision.models.resnet18()`` / ``resnet50()``.
``<dir>/backbone.json``: ``{"arch", "small_stem", "image_size", "mean", "std",
"method", "steps"}`` -- small_stem tells loaders to apply the stem change of
`synthssl.train.models.backbone.build_backbone` (the weights load either way);
mean/std are the input normalisation (RGB in [0,1] -> (x - mean) / std).
Both files are written atomically.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from synthssl.dataset.console import publish_mode
from synthssl.dataset.errors import OutputWriteError, write_failure
from synthssl.train.models.backbone import build_backbone

META_KEYS = ("arch", "small_stem", "image_size", "mean", "std", "method", "steps")


def _atomic_write_bytes(path: Path, write) -> None:
    """Write through a temp file (given the user's umask mode) and os.replace; a failed write
    (full disk, no permission) raises OutputWriteError naming `path`, with the temp file removed."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        publish_mode(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, (OSError, RuntimeError)):  # torch.save reports a full disk as a RuntimeError
            raise OutputWriteError(path, write_failure(exc, path.parent)) from exc
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temp file next to `path`, then os.replace."""
    _atomic_write_bytes(Path(path), lambda handle: torch.save(obj, handle))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write text to a temp file next to `path`, then os.replace."""
    _atomic_write_bytes(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def save_backbone(resnet: nn.Module, directory: str | os.PathLike, *, arch: str, small_stem: bool,
                  image_size: int, mean: tuple[float, ...], std: tuple[float, ...], method: str,
                  steps: int) -> Path:
    """Write backbone.pt + backbone.json into `directory`; returns the .pt path."""
    directory = Path(directory)
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
             for k, v in resnet.state_dict().items()}
    reference = getattr(torchvision.models, arch)(weights=None).state_dict()
    missing = sorted(set(reference) - set(state))
    extra = sorted(set(state) - set(reference))
    if missing or extra:
        raise ValueError(f"export: backbone state_dict does not match torchvision {arch} "
                         f"(missing {missing[:5]}, unexpected {extra[:5]})")
    meta = {"arch": arch, "small_stem": bool(small_stem), "image_size": int(image_size),
            "mean": [float(m) for m in mean], "std": [float(s) for s in std],
            "method": method, "steps": int(steps)}
    pt = directory / "backbone.pt"
    atomic_torch_save(state, pt)
    atomic_write_text(json.dumps(meta, indent=2) + "\n", directory / "backbone.json")
    return pt


def _state_mismatch(expected: dict, found: Any) -> str:
    """'3 missing keys, 30 unexpected, 5 of another shape, e.g. layer1.0.conv3.weight' (for one-line errors)."""
    if not isinstance(found, dict):
        return f"a {type(found).__name__}, not a state_dict"
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shape = sorted(k for k in set(expected) & set(found)
                   if getattr(found[k], "shape", None) != getattr(expected[k], "shape", None))
    example = (missing or unexpected or shape or ["?"])[0]
    return f"{len(missing)} missing keys, {len(unexpected)} unexpected, {len(shape)} of another shape, e.g. {example}"


def load_backbone(path: str | os.PathLike) -> tuple[torchvision.models.ResNet, dict]:
    """Load an export: `path` is the export directory or its backbone.pt.

    Returns (resnet, meta): a torchvision ResNet with the small stem applied when meta
    says so, weights loaded strictly, in eval mode on CPU.
    """
    path = Path(path)
    pt = path / "backbone.pt" if path.is_dir() else path
    meta_path = pt.with_name("backbone.json")
    if not pt.is_file():
        raise FileNotFoundError(f"{pt}: no exported backbone here (expected backbone.pt)")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: missing; an export is backbone.pt + backbone.json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_path}: not a backbone.json ({exc}); expected a JSON object with keys "
                         f"{list(META_KEYS)}") from None
    missing = [k for k in META_KEYS if k not in meta] if isinstance(meta, dict) else list(META_KEYS)
    if missing:
        raise ValueError(f"{meta_path}: missing keys {missing}; expected {list(META_KEYS)}")
    try:
        resnet = build_backbone(meta["arch"], bool(meta["small_stem"]))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"{meta_path}: arch {meta['arch']!r} is not a supported backbone ({exc})") from None
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)  # a foreign file cannot run code
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{pt}: cannot be read as a backbone state_dict ({first}); expected the backbone.pt "
                         f"of a train-ssl export") from None
    try:
        resnet.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError):
        raise ValueError(f"{pt}: does not hold {meta['arch']} weights as {meta_path.name} says "
                         f"({_state_mismatch(resnet.state_dict(), state)}); export and backbone.json must come "
                         f"from the same run") from None
    return resnet.eval(), meta
