"""PNG renderings of predicted maps and the contact sheet (uint8 RGB, OpenCV drawing).

- depth: viridis over the image's own 2nd-98th percentile of predicted depth
  (dark purple = near, yellow = far), with a colour bar labelled in the same relative
  units as ``depth.npy``;
- normals: RGB = (x, -y, -z) / 2 + 0.5 in the OpenCV camera frame (facing the camera =
  blue-violet, facing up = green), as in the evaluation figures;
- contours: gray level = 255 x probability (white = contour).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from synthssl.train.eval.drawing import colorize, panel_grid, put_text
from synthssl.train.eval.figures import normals_to_rgb

__all__ = [
    "depth_range",
    "depth_rgb",
    "depth_with_colorbar",
    "normals_rgb",
    "contour_rgb",
    "fit_square",
    "contact_sheet",
    "SHEET_COLUMNS",
]

SHEET_COLUMNS = ("input", "depth", "normals", "contours")


def depth_range(depth: np.ndarray) -> tuple[float, float]:
    """(2nd, 98th) percentile of depth [H, W] (the colour range of its rendering)."""
    lo, hi = (float(v) for v in np.percentile(depth, [2, 98]))
    return (lo, hi) if hi > lo else (lo, lo + max(abs(lo), 1.0) * 1e-3)


def depth_rgb(depth: np.ndarray) -> np.ndarray:
    """depth float [H, W] -> uint8 RGB [H, W, 3] (viridis over `depth_range`)."""
    return colorize(depth, *depth_range(depth))


def depth_with_colorbar(depth: np.ndarray) -> np.ndarray:
    """`depth_rgb` with a vertical colour bar on the right: far (98th pct.) at the top,
    near (2nd pct.) at the bottom, labelled with the values of ``depth.npy``."""
    h, w = depth.shape
    lo, hi = depth_range(depth)
    bar_w, label_w, gap = max(8, h // 24), 74, 6
    canvas = np.full((h, w + gap + bar_w + label_w, 3), 255, np.uint8)
    canvas[:, :w] = colorize(depth, lo, hi)
    ramp = np.repeat(np.linspace(hi, lo, h, dtype=np.float32)[:, None], bar_w, axis=1)
    canvas[:, w + gap : w + gap + bar_w] = colorize(ramp, lo, hi)
    x = w + gap + bar_w + 4
    scale = 0.35 if h >= 60 else 0.28
    put_text(canvas, f"{hi:.3g} far", (x, 12), scale)
    put_text(canvas, f"{lo:.3g} near", (x, h - 4), scale)
    if h >= 80:
        put_text(canvas, f"{(lo + hi) / 2:.3g}", (x, h // 2 + 4), scale)
    return canvas


def normals_rgb(normal: np.ndarray) -> np.ndarray:
    """normal float [3, H, W] (camera frame) -> uint8 RGB [H, W, 3]."""
    return normals_to_rgb(np.transpose(normal, (1, 2, 0)))


def contour_rgb(contour: np.ndarray) -> np.ndarray:
    """contour probability float [H, W] in [0, 1] -> uint8 gray RGB [H, W, 3]."""
    g = (np.clip(contour, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def fit_square(img: np.ndarray, cell: int) -> np.ndarray:
    """RGB [H, W, 3] scaled (aspect kept) into a white ``cell`` x ``cell`` square, centred."""
    h, w = img.shape[:2]
    scale = cell / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(
        np.ascontiguousarray(img), (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    out = np.full((cell, cell, 3), 255, np.uint8)
    y0, x0 = (cell - nh) // 2, (cell - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = small
    return out


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]], names: Sequence[str], title: str, cell: int = 160
) -> np.ndarray:
    """One row per image: tiles input | depth | normals | contours (each `fit_square`d)."""
    cells = [[fit_square(t, cell) for t in row] for row in rows]
    return panel_grid(cells, SHEET_COLUMNS, list(names), cell=cell, title=title)
