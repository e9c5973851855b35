"""PNG contact sheet of rendered scenes: one row per (scene, view) with rgb, depth, normals, contours, instances.

A header band names each column (`COLUMNS`).

Depth is shown with a per-row colour map (near = bright, no surface = black),
normals as (n + 1) / 2 in RGB (OpenCV camera frame: x right = red, y down = green,
z forward = blue), instances with a fixed random palette (0 = black).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from synthssl.core.errors import OutputWriteError
from synthssl.dataset.reader import ShardCollection

COLUMNS = ("rgb", "depth", "normal", "contour", "instance")


def _palette() -> np.ndarray:
    pal = np.random.default_rng(12345).integers(40, 256, size=(65536, 3)).astype(np.uint8)
    pal[0] = 0
    return pal


def view_tiles(scene: dict, v: int) -> list[np.ndarray]:
    """The five uint8 RGB tiles [H, W, 3] of view ``v`` of a scene dict."""
    depth = scene["depth"][v].astype(np.float64)
    surface = depth > 0
    d = np.zeros_like(depth)
    if surface.any():
        lo, hi = depth[surface].min(), depth[surface].max()
        d[surface] = 1.0 - (depth[surface] - lo) / max(hi - lo, 1e-9) * 0.85
    depth_rgb = cv2.applyColorMap((d * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1].copy()
    depth_rgb[~surface] = 0
    normal = scene["normal"][v].astype(np.float32)
    normal_rgb = np.where(surface[..., None], (normal + 1) * 127.5, 0).astype(np.uint8)
    contour = np.repeat(scene["contour"][v][..., None] * 255, 3, axis=-1).astype(np.uint8)
    instance = _palette()[scene["instance"][v].astype(np.int64)]
    return [scene["rgb"][v], depth_rgb, normal_rgb, contour, instance]


def column_header(tile_width: int, separator: int, scale: int) -> np.ndarray:
    """uint8 RGB [h, W, 3]: the names of `COLUMNS`, black on white, each centred over its column of a sheet
    whose tiles are ``tile_width`` pixels wide with ``separator`` pixels between them (before ``scale``)."""
    column = (tile_width + separator) * scale
    width = column * len(COLUMNS) - separator * scale
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    widest = max(cv2.getTextSize(name, font, 1.0, thickness)[0][0] for name in COLUMNS)
    size = min(0.5, 0.9 * (column - separator * scale) / widest)  # the longest name fits its column
    height = cv2.getTextSize("Mg", font, size, thickness)[0][1]
    header = np.full((height + 10, width, 3), 255, np.uint8)
    for k, name in enumerate(COLUMNS):
        text_w = cv2.getTextSize(name, font, size, thickness)[0][0]
        x = k * column + max((column - separator * scale - text_w) // 2, 0)
        cv2.putText(header, name, (x, height + 4), font, size, (0, 0, 0), thickness, cv2.LINE_AA)
    return header


def contact_sheet(directory: str | os.PathLike, out: str | os.PathLike, scenes: int = 4, scale: int = 2) -> Path:
    """Write a contact sheet of the first ``scenes`` scenes of ``directory`` to PNG ``out``; returns its path.

    Written to a temporary file, then renamed; OutputWriteError when the PNG cannot be written."""
    coll = ShardCollection([str(directory)])
    rows = []
    for i in range(min(scenes, len(coll))):
        s = coll[i]
        for v in range(s["rgb"].shape[0]):
            tiles = view_tiles(s, v)
            sep = np.full((tiles[0].shape[0], 2, 3), 255, np.uint8)
            row = np.concatenate([x for t in tiles for x in (t, sep)][:-1], axis=1)
            rows.append(row)
            rows.append(np.full((2 if v + 1 < s["rgb"].shape[0] else 6, row.shape[1], 3), 255, np.uint8))
    if not rows:
        raise ValueError(f"preview: {directory} holds no scenes")
    sheet = np.concatenate(rows[:-1], axis=0)
    sheet = cv2.resize(sheet, (sheet.shape[1] * scale, sheet.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    sheet = np.concatenate([column_header(coll.width, 2, scale), sheet], axis=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}.png")
    try:
        written = cv2.imwrite(str(tmp), sheet[..., ::-1])
        if written:
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if not written:
        raise OutputWriteError(out, "the PNG encoder could not write it (full disk or no permission?)")
    return out


__all__ = ["contact_sheet", "column_header", "view_tiles", "COLUMNS"]
