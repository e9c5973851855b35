"""The report's figures (uint8 RGB images, drawn by :mod:`synthssl.train.eval.drawing`).

- :func:`training_curves_figure`: one small chart per logged quantity of ``metrics.jsonl``.
- :func:`embedding_figure`: PCA of probe-set features, points coloured by class,
  one panel per backbone.
- :func:`dense_examples_figure`: per row one held-out view or real photo; columns
  input, predicted / true depth, normals, contours and a PCA colouring of the dense
  features. Colour conventions: depth with the viridis map over the row's true (or
  predicted, for photos) 2nd-98th percentile range, black = no ground truth;
  normals RGB = (x, -y, -z) / 2 + 0.5 in the OpenCV camera frame (facing the camera
  = blue, facing up = green); contours as edge probability, white = 1; features: the
  first three principal components of all shown pixels, each mapped from its
  1st-99th percentile to [0, 255].
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from synthssl.train.eval.dense_probe import DenseProbe
from synthssl.train.eval.drawing import colorize, line_chart, panel_grid, put_text, scatter_chart
from synthssl.train.eval.pca import pca_fit, pca_project

__all__ = [
    "read_metrics_jsonl",
    "training_curves_figure",
    "embedding_figure",
    "dense_examples_figure",
    "normals_to_rgb",
    "hstack_images",
]


#: Keys of metrics.jsonl that are not curves (wall-clock timestamps, the x axis).
_NOT_PLOTTED = {"step", "time", "timestamp", "wall_time", "epoch_time"}


def read_metrics_jsonl(path: str | Path) -> list[dict]:
    """Records of a run's ``metrics.jsonl`` (one JSON object per line; blank lines skipped)."""
    path = Path(path)
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON object ({exc.msg})") from exc
    return records


def training_curves_figure(records: Sequence[dict], title: str, columns: int = 3) -> np.ndarray:
    """Small multiples: one chart per numeric key against ``step`` ("loss" first; the
    step and wall-clock keys are not plotted; at most 18 charts)."""
    keys: list[str] = []
    for r in records:
        keys += [
            k
            for k, v in r.items()
            if k not in _NOT_PLOTTED and k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
    keys = sorted(keys, key=lambda k: k != "loss")[:18]  # the total loss first, then as logged
    if not keys:
        img = np.full((120, 500, 3), 255, np.uint8)
        put_text(img, f"{title}: no numeric metrics logged", (10, 60))
        return img
    charts = []
    for k in keys:
        pts = [(r.get("step", i), r[k]) for i, r in enumerate(records) if isinstance(r.get(k), (int, float))]
        charts.append(line_chart({k: ([p[0] for p in pts], [p[1] for p in pts])}, k, legend=False))
    blank = np.full_like(charts[0], 255)
    rows = [
        np.hstack(charts[i : i + columns] + [blank] * (columns - len(charts[i : i + columns])))
        for i in range(0, len(charts), columns)
    ]
    body = np.vstack(rows)
    header = np.full((34, body.shape[1], 3), 255, np.uint8)
    put_text(header, title, (10, 24), 0.6)
    return np.vstack([header, body])


def hstack_images(images: Sequence[np.ndarray]) -> np.ndarray:
    """Place RGB images side by side, padding heights with white."""
    h = max(i.shape[0] for i in images)
    return np.hstack([np.pad(i, ((0, h - i.shape[0]), (0, 0), (0, 0)), constant_values=255) for i in images])


def embedding_figure(
    panels: dict[str, tuple[torch.Tensor, np.ndarray]], class_names: Sequence[str], dataset: str
) -> np.ndarray:
    """One PCA scatter per backbone: panels maps name -> (features [N, D], labels [N])."""
    charts = [
        scatter_chart(pca_project(f, 2).numpy(), labels, class_names, f"{name}: PCA of {dataset} features")
        for name, (f, labels) in panels.items()
    ]
    return hstack_images(charts)


def normals_to_rgb(normal: np.ndarray) -> np.ndarray:
    """float [H, W, 3] camera-frame normals -> uint8 RGB, (x, -y, -z)/2 + 0.5; zero vectors black."""
    n = normal * np.array([1.0, -1.0, -1.0])
    rgb = ((n * 0.5 + 0.5) * 255).clip(0, 255).astype(np.uint8)
    rgb[np.abs(normal).sum(-1) == 0] = 0
    return rgb


def _gray(x: np.ndarray) -> np.ndarray:
    return np.repeat((np.clip(x, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)


def _feature_pca_rgb(features: torch.Tensor, size: tuple[int, int]) -> list[np.ndarray]:
    """[N, C, h, w] -> N RGB images [H, W, 3] from a PCA fitted on all their pixels."""
    n, c, h, w = features.shape
    flat = features.float().permute(0, 2, 3, 1).reshape(-1, c)
    mean, comps = pca_fit(flat, 3)
    proj = ((flat.double() - mean) @ comps.T).reshape(n, h, w, 3).numpy()
    lo = np.percentile(proj.reshape(-1, 3), 1, axis=0)
    hi = np.percentile(proj.reshape(-1, 3), 99, axis=0)
    rgb = ((proj - lo) / np.where(hi > lo, hi - lo, 1.0)).clip(0, 1)
    return [
        cv2.resize((img * 255).astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST) for img in rgb
    ]


def dense_examples_figure(
    probe: DenseProbe,
    rgb: np.ndarray,
    row_names: Sequence[str],
    title: str,
    depth: np.ndarray | None = None,
    normal: np.ndarray | None = None,
    contour: np.ndarray | None = None,
    num_with_truth: int = 0,
    device="cpu",
    cell: int = 128,
) -> np.ndarray:
    """Rows = images uint8 [N, H, W, 3]; the first ``num_with_truth`` rows have ground
    truth (depth [n, H, W], normal [n, H, W, 3], contour [n, H, W]); others get "n/a"."""
    pred = probe.predict(rgb, device)
    pca_rgb = _feature_pca_rgb(pred["features"], rgb.shape[1:3])
    rows = []
    for i in range(rgb.shape[0]):
        has_gt = i < num_with_truth
        p_depth = pred["depth"][i].numpy()
        ref = depth[i][depth[i] > 0] if has_gt and (depth[i] > 0).any() else p_depth.reshape(-1)
        lo, hi = (float(np.percentile(ref, 2)), float(np.percentile(ref, 98))) if ref.size else (0.0, 1.0)
        p_normal = pred["normal"][i].permute(1, 2, 0).numpy()
        rows.append(
            [
                rgb[i],
                colorize(p_depth, lo, hi),
                colorize(depth[i], lo, hi, invalid=depth[i] <= 0) if has_gt else None,
                normals_to_rgb(p_normal),
                normals_to_rgb(normal[i]) if has_gt else None,
                _gray(pred["contour"][i].numpy()),
                _gray(contour[i].astype(np.float32)) if has_gt else None,
                pca_rgb[i],
            ]
        )
    cols = [
        "input",
        "depth pred",
        "depth true",
        "normal pred",
        "normal true",
        "contour pred",
        "contour true",
        "feature PCA",
    ]
    return panel_grid(rows, cols, list(row_names), cell=cell, title=title)
