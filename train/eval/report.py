"""Report files: ``results.json`` and the Markdown summary ``report.md``.

results.json layout::

    {"backbones": {name: {"source", "meta", "fingerprint"}},
     "image": {dataset: {"num_train", "num_test", "seeds",
                         "metrics": {backbone: {"knn_k20" | ... | "linear": {"mean", "std", "values"}}}}},
     "dense": {"num_train_views", "num_test_views", "shards": [paths],
               "held_out": {backbone: {"held_out": true | false | null, "reason"}},  (random init left out)
               "metrics": {backbone: {"depth": {...}, "normal": {...}, "contour": {...}, "segmentation": {...}}}},
     "figures": [relative paths], "config": {...}}

Accuracies and percentages are in %, depth errors in metres (RMSE) or relative (AbsRel),
angles in degrees. No timestamps are stored, so the same evaluation gives the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthssl.train.export import atomic_write_text

__all__ = ["DENSE_ROWS", "beyond_spread", "write_json", "markdown_report"]

#: (task, metric, label, higher is better) rows of the dense table.
DENSE_ROWS = (
    ("depth", "abs_rel", "depth AbsRel", False),
    ("depth", "rmse", "depth RMSE (m)", False),
    ("depth", "delta1", "depth δ<1.25 (%)", True),
    ("normal", "mean_angle", "normals mean error (°)", False),
    ("normal", "median_angle", "normals median error (°)", False),
    ("normal", "under_11.25", "normals < 11.25° (%)", True),
    ("normal", "under_22.5", "normals < 22.5° (%)", True),
    ("normal", "under_30", "normals < 30° (%)", True),
    ("contour", "ods_f", "contours ODS F", True),
    ("segmentation", "miou", "categories mIoU (%)", True),
    ("segmentation", "pixel_acc", "categories pixel acc. (%)", True),
)

_IMAGE_LABELS = {"linear": "linear probe top-1 (%)"}


def write_json(path: str | Path, obj: Any) -> None:
    """Pretty JSON, written atomically."""
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", path)


def beyond_spread(diff: float, spread_a: float, spread_b: float) -> bool:
    """The project's verdict rule: a difference of two means is real only when it exceeds
    the sum of the two spreads (sample standard deviations over seeds, >= 0)."""
    return abs(diff) > spread_a + spread_b


def _bold_best(values: list[float], higher: bool) -> list[bool]:
    """Marks the best of single values (no spread to judge them by)."""
    best = max(values) if higher else min(values)
    return [v == best and len(values) > 1 for v in values]


def _bold_real_best(means: list[float], stds: list[float]) -> list[bool]:
    """Marks the highest mean only if it beats every other by more than the sum of the two stds.

    A higher mean inside the spread is a tie, and a tie is not shown as a win.
    """
    if len(means) < 2:
        return [False] * len(means)
    i = max(range(len(means)), key=means.__getitem__)
    real = all(beyond_spread(means[i] - m, stds[i], s) for j, (m, s) in enumerate(zip(means, stds)) if j != i)
    return [real and j == i for j in range(len(means))]


def _held_out_lines(dense: dict) -> list[str]:
    """'Shards: `a`, `b`.' and, per backbone, whether they were held out from its training (with a blank
    line after); nothing for results written without that record."""
    verdicts = dense.get("held_out")
    if verdicts is None:
        return []
    shards = ", ".join(f"`{s}`" for s in dense.get("shards", []))
    lines = [f"Shards: {shards}." if shards else "Shards: not recorded."]
    lines += [f"- {name}: {v['reason']}." for name, v in verdicts.items()]
    return [*lines, ""]


def markdown_report(results: dict) -> str:
    """The summary: backbones, image-level and dense tables, figures.

    Image tables bold a mean only when it beats every other column by more than the summed
    stds (`_bold_real_best`); dense tables (one probe run each) bold the best value.
    """
    names = list(results["backbones"])
    lines = [
        "# synthssl evaluation report",
        "",
        "## Backbones",
        "",
        "| name | source | arch | method | steps | image size |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, b in results["backbones"].items():
        m = b["meta"]
        lines.append(
            f"| {name} | `{b['source']}` | {m['arch']}{' (small stem)' if m['small_stem'] else ''} | "
            f"{m['method']} | {m['steps']} | {m['image_size']} |"
        )
    for dataset, block in results.get("image", {}).items():
        lines += [
            "",
            f"## {dataset}: frozen features, top-1 accuracy (%)",
            "",
            f"{block['num_train']} training and {block['num_test']} test images per seed, "
            f"seeds {block['seeds']}; mean ± std over seeds. Bold: higher than every other "
            "column by more than the sum of the two stds (otherwise a tie, nothing bold).",
            "",
            "| protocol | " + " | ".join(names) + " |",
            "| --- |" + " --- |" * len(names),
        ]
        metric_names = list(next(iter(block["metrics"].values())))
        for metric in metric_names:
            vals = [block["metrics"][n][metric] for n in names]
            bold = _bold_real_best([v["mean"] for v in vals], [v["std"] for v in vals])
            cells = [
                (f"**{v['mean']:.2f} ± {v['std']:.2f}**" if b else f"{v['mean']:.2f} ± {v['std']:.2f}")
                for v, b in zip(vals, bold)
            ]
            label = _IMAGE_LABELS.get(metric, metric.replace("knn_k", "weighted k-NN, k=") + " top-1 (%)")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    dense = results.get("dense")
    if dense:
        lines += [
            "",
            "## Dense probes on rendered views (frozen backbone)",
            "",
            *_held_out_lines(dense),
            f"{dense['head']} head trained on {dense['num_train_views']} views, tested on "
            f"{dense['num_test_views']} views, one probe run each (no spread: bold is the best value "
            "only). ↓ lower is better, ↑ higher is better.",
            "",
            *([f"**Note:** {dense['shortfall']}.", ""] if dense.get("shortfall") else []),
            "| metric | " + " | ".join(names) + " |",
            "| --- |" + " --- |" * len(names),
        ]
        for task, metric, label, higher in DENSE_ROWS:
            vals = [dense["metrics"][n][task][metric] for n in names]
            bold = _bold_best(vals, higher)
            cells = [f"**{v:.3f}**" if b else f"{v:.3f}" for v, b in zip(vals, bold)]
            lines.append(f"| {label} {'↑' if higher else '↓'} | " + " | ".join(cells) + " |")
    if results.get("figures"):
        lines += ["", "## Figures", ""]
        for fig in results["figures"]:
            lines += [f"![{Path(fig).stem}]({fig})", ""]
    return "\n".join(lines).rstrip() + "\n"
