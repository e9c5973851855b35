"""The torch device a command asks for, and the autocast precision that goes with it.

Every command that runs a model (``train-ssl``, ``train-ssl eval``, ``train-ssl predict``
and the benchmarks) takes its device as one of ``auto`` (cuda when available, else cpu),
``cpu``, ``cuda`` or ``cuda:N`` and resolves it here. A spec that is none of them, or a
cuda device this machine does not have, is a `ConfigError` whose one-line message names
the option it came from (``train.device``, ``--device``, ...).
"""

from __future__ import annotations

from typing import Optional

import torch

from synthssl.core.config import ConfigError

__all__ = ["resolve_device", "resolve_precision"]

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(spec: str, option: str) -> torch.device:
    """The device ``spec`` names (see the module docstring); errors name ``option``."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{option}: {spec!r} is not a device; expected {CHOICES}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"{option}: {spec!r} is not a device this package trains on; expected {CHOICES}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option}: {spec!r} asks for CUDA, which this machine does not have; use cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"{option}: {spec!r} names GPU {device.index}, but this machine has "
            f"{torch.cuda.device_count()} (cuda:0 to cuda:{torch.cuda.device_count() - 1})"
        )
    return device


def resolve_precision(spec: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of precision ``spec`` on ``device`` (None = fp32).

    ``auto``: bf16 on GPUs that support it, else fp16; fp32 on the CPU. ``fp32``, ``bf16``
    and ``fp16`` as named (the config checks the spelling).
    """
    if spec == "fp32" or (spec == "auto" and device.type != "cuda"):
        return None
    if spec == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if spec == "bf16" else torch.float16
