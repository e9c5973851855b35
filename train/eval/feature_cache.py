"""Cache of extracted features, in memory and optionally on disk.

A cache entry is identified by a dict of everything the features depend on (backbone
weights fingerprint, dataset name, image indices, preprocessing); its SHA-256 names
the file ``<directory>/<key>.pt``. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from synthssl.train.export import atomic_torch_save
from synthssl.train.models.encoder import Encoder

__all__ = ["backbone_fingerprint", "indices_fingerprint", "FeatureCache"]


def backbone_fingerprint(module: nn.Module) -> str:
    """SHA-256 (hex) of a module's state_dict: names, dtypes, shapes and values, plus
    whether it uses the small ResNet stem (which changes outputs but not weights). An
    `Encoder` has its trunk's fingerprint (the same as the bare backbone's)."""
    if isinstance(module, Encoder):
        module = module.trunk
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    conv1 = getattr(module, "conv1", None)
    if conv1 is not None:
        h.update(
            f"conv1.stride={tuple(conv1.stride)}|maxpool={type(getattr(module, 'maxpool', None)).__name__}".encode()
        )
    return h.hexdigest()


def indices_fingerprint(indices: np.ndarray) -> str:
    """SHA-256 (hex, 16 chars) of an int64 index array."""
    return hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


class FeatureCache:
    """``get_or_compute(key, compute)`` returns cached features or computes and stores them."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[str, torch.Tensor] = {}

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def get_or_compute(self, parts: dict[str, Any], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        key = self.key(parts)
        if key in self._memory:
            return self._memory[key]
        path = self.directory / f"{key}.pt" if self.directory is not None else None
        if path is not None and path.is_file():
            value = torch.load(path, map_location="cpu", weights_only=True)
        else:
            value = compute()
            if path is not None:
                atomic_torch_save(value, path)
        self._memory[key] = value
        return value
