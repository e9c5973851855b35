"""Anti-aliasing of a single-sample colour pass at object boundaries, from the exact instance map.

Aliasing in a rendered image is at geometric edges: where one surface ends and another begins
within a pixel. The id pass already knows these edges exactly: the shard's contour map, pixels whose
instance differs from a 4-neighbour's. `smooth_edges` replaces the colour of those pixels (on both
sides of each boundary) by half their own colour plus half a 3x3 tent filter ([1 2 1] x [1 2 1] / 16) of
the single-sample colour, so that a boundary becomes a soft transition about one pixel wide, for a
fraction of 4x MSAA's cost on a CPU rasterizer. The half-and-half mix is the one whose colour
steps across boundaries are distributed as 4x MSAA's (their mean and 90th percentile; the full
tent is twice as soft, no filter a third sharper: docs/render.md). Texture detail inside a
surface is left as rendered (MSAA does not filter it either); edges within one instance (creases,
an object occluding itself) stay sharp.
"""

from __future__ import annotations

import cv2
import numpy as np

_KERNEL = 0.5 * np.pad([[1.0]], 1) + 0.5 * np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0


def smooth_edges(rgb: np.ndarray, contour: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3]: ``rgb`` (uint8 [H, W, 3], one sample per pixel centre) with the pixels where
    ``contour`` ([H, W], the same view's contour map, `synthssl.dataset.contour.contour_from_instance`
    of its id pass) is set filtered as the module docstring says (borders replicate the edge pixel)."""
    if rgb.shape[:2] != contour.shape:
        raise ValueError(f"colour {rgb.shape[:2]} and contour {contour.shape} maps differ in size")
    soft = cv2.filter2D(rgb, -1, _KERNEL, borderType=cv2.BORDER_REPLICATE)
    return np.where(contour[..., None].astype(bool), soft, rgb)


__all__ = ["smooth_edges"]
