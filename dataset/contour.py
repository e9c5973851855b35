"""The instance-contour map, as defined by the shard format."""

from __future__ import annotations

import numpy as np


def contour_from_instance(instance: np.ndarray) -> np.ndarray:
    """Contour map of an instance map [..., H, W]: 1 where a 4-neighbour differs, else 0 (uint8)."""
    inst = np.asarray(instance)
    edge = np.zeros(inst.shape, dtype=bool)
    dv = inst[..., 1:, :] != inst[..., :-1, :]
    du = inst[..., :, 1:] != inst[..., :, :-1]
    edge[..., 1:, :] |= dv
    edge[..., :-1, :] |= dv
    edge[..., :, 1:] |= du
    edge[..., :, :-1] |= du
    return edge.astype(np.uint8)
