"""Aggregation, verdicts, table and chart of ``bench/bench_quality.py``.

Per arm and metric: mean over seeds and the spread, the sample standard deviation
(ddof = 1) over seeds. An arm trained with one seed has no spread of its own; for the
verdicts it is given the largest spread that any multi-seed arm shows on that metric.
``full`` is compared with every other arm: the difference (full - other, signed so that
> 0 means full is better) is *real* only when it exceeds the sum of the two spreads
(`synthssl.train.eval.report.beyond_spread`, the rule of ``train-ssl eval``'s report too).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from synthssl.train.eval.drawing import bar_chart
from synthssl.train.eval.report import beyond_spread

#: Arms in report order.
ARMS_ORDER = ("random", "simclr_photos", "contrast", "full", "dsc", "dsc_full")

#: metric -> (label, higher is better, measured on real images)
METRICS: dict[str, tuple[str, bool, bool]] = {
    "fmnist_linear": ("Fashion-MNIST linear (%)", True, True),
    "fmnist_knn": ("Fashion-MNIST k-NN k=20 (%)", True, True),
    "patches_linear": ("photo-patches linear (%)", True, True),
    "patches_knn": ("photo-patches k-NN k=20 (%)", True, True),
    "depth_absrel": ("depth AbsRel (renders)", False, False),
    "normal_deg": ("normal error ° (renders)", False, False),
    "contour_f": ("contour ODS-F (renders)", True, False),
    "category_miou": ("category mIoU % (renders)", True, False),
}


#: decimals shown per metric (the rest: 1)
DIGITS = {"depth_absrel": 3, "contour_f": 3}


def summarise(values: list[float]) -> dict:
    """{"mean", "spread" (sample std, None for one value), "values"}."""
    arr = np.asarray(values, np.float64)
    return {
        "mean": float(arr.mean()),
        "spread": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "values": [float(v) for v in arr],
    }


def summarise_arms(
    runs: Mapping[str, Mapping[int, dict]], order: Sequence[str] = ARMS_ORDER, metrics: Mapping[str, Any] = METRICS
) -> dict[str, dict]:
    """arm -> {"seeds", "train_seconds" (mean), "metrics": {metric: `summarise` over seeds}} from per-seed
    eval records, for the ``metrics`` every seed of the arm has; arms in ``order``, unknown ones after."""
    arms: dict[str, dict] = {}
    for arm in [a for a in order if a in runs] + [a for a in runs if a not in order]:
        records = [runs[arm][s] for s in sorted(runs[arm])]
        present = [m for m in metrics if all(m in r["metrics"] for r in records)]
        arms[arm] = {
            "seeds": len(records),
            "train_seconds": float(np.mean([r["train_seconds"] for r in records])),
            "metrics": {m: summarise([r["metrics"][m] for r in records]) for m in present},
        }
    return arms


def compare_arms(runs: Mapping[str, Mapping[int, dict]], reference: str = "full") -> dict:
    """``{"arms": {arm: {...}}, "comparisons": {other: {metric: {...}}}}`` from per-seed eval records."""
    arms = summarise_arms(runs)
    fallback = {
        m: max(
            [
                a["metrics"][m]["spread"]
                for a in arms.values()
                if m in a["metrics"] and a["metrics"][m]["spread"] is not None
            ],
            default=0.0,
        )
        for m in METRICS
    }

    def spread(arm: str, m: str) -> float:
        s = arms[arm]["metrics"][m]["spread"]
        return fallback[m] if s is None else s

    comparisons: dict[str, dict] = {}
    if reference in arms:
        for other in arms:
            if other == reference:
                continue
            rows = {}
            for m, (_, higher, _) in METRICS.items():
                if m not in arms[reference]["metrics"] or m not in arms[other]["metrics"]:
                    continue
                diff = arms[reference]["metrics"][m]["mean"] - arms[other]["metrics"][m]["mean"]
                diff = diff if higher else -diff
                margin = spread(reference, m) + spread(other, m)
                real = beyond_spread(diff, spread(reference, m), spread(other, m))
                rows[m] = {
                    "diff": diff,
                    "margin": margin,
                    "real": real,
                    "verdict": ("better" if diff > 0 else "worse") if real else "within spread",
                }
            comparisons[other] = rows
    return {"arms": arms, "comparisons": comparisons, "reference": reference}


def _cell(s: dict, digits: int) -> str:
    spread = "" if s["spread"] is None else f" ± {s['spread']:.{digits}f}"
    return f"{s['mean']:.{digits}f}{spread}"


def quality_markdown(results: dict) -> str:
    """report.md: settings, arms x metrics (mean ± spread), verdicts of ``full`` against each arm."""
    arms, st = results["arms"], results["settings"]
    lines = [
        "# synthssl quality benchmark",
        "",
        f"Budget `{results['budget']}`: ResNet-18, {st['image_size']} px, {st['batch_size']} view pairs per "
        f"step, {st['steps']} steps ({st['optim']}, lr {st['lr']}, {st['warmup_steps']} warm-up steps, cosine), "
        f"{st['scenes']} rendered training scenes. Values: mean ± spread (sample std over seeds); "
        f"Fashion-MNIST on {st['fmnist_train']} training and {st['fmnist_test']} test images; "
        f"photo-patches on its full split; dense probes on {st['dense_test_scenes']} held-out scenes. "
        f"Training and evaluation of all runs: {results.get('run_seconds', 0) / 60:.1f} min "
        f"(this invocation: {results.get('total_seconds', 0) / 60:.1f} min; rendering and reused work "
        f"make the difference).",
        "",
        "| arm | seeds | train time (s) | "
        + " | ".join(f"{METRICS[m][0]} {'↑' if METRICS[m][1] else '↓'}" for m in METRICS)
        + " |",
        "| --- | --- | --- |" + " --- |" * len(METRICS),
    ]
    for arm, a in arms.items():
        cells = [_cell(a["metrics"][m], DIGITS.get(m, 1)) if m in a["metrics"] else "–" for m in METRICS]
        lines.append(f"| {arm} | {a['seeds']} | {a['train_seconds']:.0f} | " + " | ".join(cells) + " |")
    ref = results.get("reference", "full")
    if results.get("comparisons"):
        lines += [
            "",
            f"## `{ref}` against each arm",
            "",
            "Difference in the metric's better direction (> 0: `full` is better); **real** when it exceeds "
            "the sum of the two spreads (an arm with one seed gets the largest spread of the multi-seed arms).",
            "",
            "| against | " + " | ".join(METRICS[m][0] for m in METRICS) + " |",
            "| --- |" + " --- |" * len(METRICS),
        ]
        for other, rows in results["comparisons"].items():
            cells = []
            for m in METRICS:
                if m not in rows:
                    cells.append("–")
                    continue
                r = rows[m]
                d = DIGITS.get(m, 1)
                text = f"{r['diff']:+.{d}f} (±{r['margin']:.{d}f})"
                cells.append(f"**{text} {r['verdict']}**" if r["real"] else f"{text} {r['verdict']}")
            lines.append(f"| {other} | " + " | ".join(cells) + " |")
    lines += ["", "![quality](quality.png)", ""]
    return "\n".join(lines)


def quality_chart(results: dict) -> np.ndarray:
    """Grouped bars: the real-image metrics per arm, error bars = spread."""
    real = [m for m, (_, _, is_real) in METRICS.items() if is_real]
    labels = {
        "fmnist_linear": "FMNIST linear",
        "fmnist_knn": "FMNIST k-NN",
        "patches_linear": "patches linear",
        "patches_knn": "patches k-NN",
    }
    series = {}
    for arm, a in results["arms"].items():
        bars = []
        for m in real:
            s = a["metrics"].get(m)
            bars.append(
                (s["mean"], s["spread"] if s["spread"] is not None else math.nan) if s else (math.nan, math.nan)
            )
        series[arm] = bars
    return bar_chart(
        [labels.get(m, m) for m in real],
        series,
        f"real-image probes, budget {results['budget']} (mean ± spread over seeds)",
        ylabel="top-1 %",
    )
