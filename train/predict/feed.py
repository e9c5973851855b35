"""How a photo of any size and aspect ratio is fed to the network.

1. Resize (aspect kept) so that the shorter side is ``size`` pixels (area
   interpolation when shrinking, bilinear when enlarging).
2. Pad right and bottom by mirroring (numpy ``symmetric``) up to the next multiple of
   the export's ``input_multiple`` (32 for the standard stem, 8 for the small one), so
   every backbone level is aligned with the pixels.
3. RGB in [0, 1], normalised with the export's mean / std.

The predictions are computed at the padded size and cropped back to the resized image
(step 1), which is the resolution of every written map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from synthssl.train.data.photos import short_side_resize

__all__ = ["Fed", "feed_image", "to_tensor"]


@dataclass(frozen=True)
class Fed:
    """One image ready for the network.

    rgb: uint8 [h, w, 3], the resized image (the maps' resolution);
    padded: uint8 [H, W, 3] with H, W multiples of the stride, rgb in its top-left corner.
    """

    rgb: np.ndarray
    padded: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(h, w) of the resized image."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


def feed_image(rgb: np.ndarray, size: int, multiple: int) -> Fed:
    """rgb uint8 [H0, W0, 3] -> `Fed` (shorter side ``size``, padded to ``multiple``)."""
    if size < 1 or multiple < 1:
        raise ValueError(f"feed_image: size {size} and multiple {multiple} must be positive")
    resized = short_side_resize(rgb, size)
    h, w = resized.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    padded = np.pad(resized, ((0, ph), (0, pw), (0, 0)), mode="symmetric") if ph or pw else resized
    return Fed(np.ascontiguousarray(resized), np.ascontiguousarray(padded))


def to_tensor(images: list[np.ndarray], mean, std) -> Tensor:
    """uint8 [H, W, 3] images of one shape -> float [N, 3, H, W], (x / 255 - mean) / std."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s
