"""Minimal raster plotting with OpenCV (matplotlib is not a dependency).

All functions return uint8 RGB images [H, W, 3]; :func:`write_png` stores one
atomically. Charts have axes with numeric ticks, a title and a legend; text uses
OpenCV's Hershey font.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from synthssl.core.console import publish_mode

__all__ = [
    "PALETTE",
    "write_png",
    "put_text",
    "line_chart",
    "bar_chart",
    "scatter_chart",
    "panel_grid",
    "colorize",
    "nice_ticks",
    "label_image",
]

#: Tableau-10 colours (RGB), used for series and classes in order.
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_GREY = (225, 225, 225)


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Encode uint8 RGB [H, W, 3] as PNG and write it atomically (temp file, os.replace)."""
    path = Path(path)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError(f"cannot encode PNG for {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        publish_mode(tmp)  # the user's umask, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def put_text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float = 0.45,
    color=_BLACK,
    thickness: int = 1,
    anchor: str = "left",
) -> None:
    """Draw ``text`` with its baseline at ``org``; anchor "left", "center" or "right"."""
    (w, _), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    x, y = org
    x = x - w // 2 if anchor == "center" else x - w if anchor == "right" else x
    cv2.putText(img, text, (int(x), int(y)), _FONT, scale, color, thickness, cv2.LINE_AA)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (about ``count`` of them)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) if lo else 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class _Axes:
    """Maps data coordinates to pixels inside a plot rectangle and draws the frame."""

    def __init__(self, img, rect, xlim, ylim, xlabel, ylabel, title):
        self.img, (self.x0, self.y0, self.x1, self.y1) = img, rect
        self.xt, self.yt = nice_ticks(*xlim), nice_ticks(*ylim)
        self.xlim = (min(self.xt[0], xlim[0]), max(self.xt[-1], xlim[1]))
        self.ylim = (min(self.yt[0], ylim[0]), max(self.yt[-1], ylim[1]))
        for t in self.yt:
            y = self.py(t)
            cv2.line(img, (self.x0, y), (self.x1, y), _GREY, 1)
            put_text(img, _fmt(t), (self.x0 - 5, y + 4), 0.38, anchor="right")
        for t in self.xt:
            x = self.px(t)
            cv2.line(img, (x, self.y0), (x, self.y1), _GREY, 1)
            put_text(img, _fmt(t), (x, self.y1 + 15), 0.38, anchor="center")
        cv2.rectangle(img, (self.x0, self.y0), (self.x1, self.y1), _BLACK, 1)
        put_text(img, title, ((self.x0 + self.x1) // 2, self.y0 - 8), 0.5, anchor="center", thickness=1)
        put_text(img, xlabel, ((self.x0 + self.x1) // 2, self.y1 + 32), 0.42, anchor="center")
        if ylabel:
            put_text(img, ylabel, (4, self.y0 - 8), 0.4)

    def px(self, x: float) -> int:
        lo, hi = self.xlim
        return int(round(self.x0 + (x - lo) / (hi - lo or 1.0) * (self.x1 - self.x0)))

    def py(self, y: float) -> int:
        lo, hi = self.ylim
        return int(round(self.y1 - (y - lo) / (hi - lo or 1.0) * (self.y1 - self.y0)))


def _legend(img, names: Sequence[str], colors, x: int, y: int) -> None:
    for i, (name, c) in enumerate(zip(names, colors)):
        yy = y + 16 * i
        cv2.rectangle(img, (x, yy - 9), (x + 12, yy + 1), c, -1)
        put_text(img, name, (x + 17, yy), 0.4)


def line_chart(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str = "step",
    ylabel: str = "",
    size: tuple[int, int] = (420, 300),
    legend: bool = True,
) -> np.ndarray:
    """Lines y(x), one per named series, on shared axes. ``size`` = (width, height)."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    xs = [float(v) for x, _ in series.values() for v in x]
    ys = [float(v) for _, y in series.values() for v in y if math.isfinite(float(v))]
    if not xs or not ys:
        put_text(img, f"{title}: no data", (10, h // 2))
        return img
    right = w - (130 if legend and len(series) > 1 else 15)
    ax = _Axes(img, (58, 30, right, h - 45), (min(xs), max(xs)), (min(ys), max(ys)), xlabel, ylabel, title)
    for i, (_, (x, y)) in enumerate(series.items()):
        pts = np.array([(ax.px(a), ax.py(b)) for a, b in zip(x, y) if math.isfinite(float(b))], np.int32)
        if len(pts) == 1:
            cv2.circle(img, tuple(int(v) for v in pts[0]), 3, PALETTE[i % 10], -1, cv2.LINE_AA)
        elif len(pts):
            cv2.polylines(img, [pts], False, PALETTE[i % 10], 2, cv2.LINE_AA)
    if legend and len(series) > 1:
        _legend(img, list(series), [PALETTE[i % 10] for i in range(len(series))], right + 8, 40)
    return img


def bar_chart(
    groups: Sequence[str],
    series: dict[str, Sequence[tuple[float, float]]],
    title: str,
    ylabel: str = "",
    size: tuple[int, int] = (720, 340),
) -> np.ndarray:
    """Grouped bars with error bars: ``series[name][g] = (value, spread)`` for group ``g``.

    NaN values leave a gap; a spread of 0 (or NaN) draws no error bar. ``size`` = (width, height).
    """
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    vals = [(v, s) for bars in series.values() for v, s in bars if math.isfinite(v)]
    if not groups or not vals:
        put_text(img, f"{title}: no data", (10, h // 2))
        return img
    lo = min(v - (s if math.isfinite(s) else 0) for v, s in vals)
    hi = max(v + (s if math.isfinite(s) else 0) for v, s in vals)
    pad = 0.1 * (hi - lo or 1.0)
    right = w - 140
    ax = _Axes(img, (58, 30, right, h - 45), (0.0, float(len(groups))), (lo - pad, hi + pad), "", ylabel, title)
    # Group labels replace the numeric x ticks: blank the tick row first.
    img[ax.y1 + 2 : ax.y1 + 20, ax.x0 - 20 : ax.x1 + 20] = 255
    n = len(series)
    slot = (ax.x1 - ax.x0) / len(groups)
    width = max(2, int(slot * 0.8 / max(n, 1)))
    base = ax.y1  # bars rise from the bottom of the axes
    for g, group in enumerate(groups):
        start = ax.x0 + g * slot + slot * 0.1
        put_text(img, group, (int(ax.x0 + (g + 0.5) * slot), ax.y1 + 15), 0.38, anchor="center")
        for i, bars in enumerate(series.values()):
            v, s = bars[g]
            if not math.isfinite(v):
                continue
            x0 = int(start + i * width)
            cv2.rectangle(img, (x0, ax.py(v)), (x0 + width - 2, base), PALETTE[i % 10], -1)
            if math.isfinite(s) and s > 0:
                xc = x0 + (width - 2) // 2
                cv2.line(img, (xc, ax.py(v - s)), (xc, ax.py(v + s)), _BLACK, 1, cv2.LINE_AA)
                for y in (ax.py(v - s), ax.py(v + s)):
                    cv2.line(img, (xc - 3, y), (xc + 3, y), _BLACK, 1, cv2.LINE_AA)
    _legend(img, list(series), [PALETTE[i % 10] for i in range(n)], right + 8, 40)
    return img


def scatter_chart(
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    title: str,
    size: tuple[int, int] = (560, 420),
    xlabel: str = "PC 1",
    ylabel: str = "PC 2",
) -> np.ndarray:
    """2-D points [N, 2] coloured by integer ``labels`` with a class legend."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    right = w - 140
    lo, hi = points.min(0), points.max(0)
    ax = _Axes(img, (58, 30, right, h - 45), (lo[0], hi[0]), (lo[1], hi[1]), xlabel, ylabel, title)
    for (x, y), c in zip(points.tolist(), labels.tolist()):
        cv2.circle(img, (ax.px(x), ax.py(y)), 3, PALETTE[int(c) % 10], -1, cv2.LINE_AA)
    _legend(img, [str(n)[:16] for n in class_names], [PALETTE[i % 10] for i in range(len(class_names))], right + 8, 40)
    return img


def colorize(
    values: np.ndarray, lo: float, hi: float, colormap: int = cv2.COLORMAP_VIRIDIS, invalid: np.ndarray | None = None
) -> np.ndarray:
    """float [H, W] -> uint8 RGB [H, W, 3] with an OpenCV colormap over [lo, hi];
    pixels where ``invalid`` is True are drawn black."""
    norm = np.clip((values - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    rgb = cv2.applyColorMap((norm * 255).astype(np.uint8), colormap)[..., ::-1].copy()
    if invalid is not None:
        rgb[invalid] = 0
    return rgb


def label_image(img: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB image to ``size`` x ``size`` (nearest when enlarging, to keep pixels visible)."""
    interp = cv2.INTER_NEAREST if img.shape[0] < size else cv2.INTER_AREA
    return cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=interp)


def panel_grid(
    cells: Sequence[Sequence[np.ndarray | None]],
    col_titles: Sequence[str],
    row_titles: Sequence[str],
    cell: int = 128,
    title: str = "",
) -> np.ndarray:
    """Grid of RGB images (None = empty cell marked "n/a") with column and row titles."""
    rows, cols = len(cells), len(col_titles)
    pad, left, top = 4, 110, 30 + (24 if title else 0)
    img = np.full((top + rows * (cell + pad) + pad, left + cols * (cell + pad) + pad, 3), 255, np.uint8)
    if title:
        put_text(img, title, (pad, 20), 0.55)
    for c, name in enumerate(col_titles):
        put_text(img, name, (left + c * (cell + pad) + cell // 2, top - 8), 0.42, anchor="center")
    for r, row in enumerate(cells):
        y = top + r * (cell + pad)
        put_text(img, row_titles[r][:15], (pad, y + cell // 2), 0.42)
        for c, tile in enumerate(row):
            x = left + c * (cell + pad)
            if tile is None:
                cv2.rectangle(img, (x, y), (x + cell, y + cell), _GREY, -1)
                put_text(img, "n/a", (x + cell // 2, y + cell // 2), 0.45, (120, 120, 120), anchor="center")
            else:
                img[y : y + cell, x : x + cell] = label_image(tile, cell)
    return img
