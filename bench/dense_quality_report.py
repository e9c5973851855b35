"""Aggregation, pairwise verdicts and report of ``bench/bench_dense_quality.py``.

Per arm and metric: the mean over pretraining seeds and the spread, the sample standard deviation
(ddof = 1) over them (`quality_report.summarise`). An arm with one seed has no spread of its own;
for the verdicts it borrows the largest spread that any multi-seed arm shows on that metric, as the
quality benchmark does. Every pair of arms is compared on every metric both have: the difference
(signed so that > 0 means the first arm of the pair is better) is *real* only when it exceeds the
sum of the two spreads (`synthssl.train.eval.report.beyond_spread`); otherwise the pair is a tie on
that metric. When no arm has several seeds there is no spread at all, and no pair is judged
(verdict "no spread").
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

from quality_report import summarise_arms as summarise_quality_arms

from synthssl.train.eval.report import beyond_spread

#: Arms in report order (the pairs follow it: the earlier arm of a pair comes first).
ARMS_ORDER = (
    "random",
    "simclr_photos",
    "mocov2",
    "densecl",
    "contrast",
    "contrast_properties",
    "full",
    "dsc_instance",
    "dsc_pixel",
    "dsc",
    "dsc_decorrelation",
    "dsc_full",
)

#: metric -> (label, higher is better, measured on real images)
METRICS: dict[str, tuple[str, bool, bool]] = {
    "fmnist_linear": ("Fashion-MNIST linear %", True, True),
    "fmnist_knn": ("Fashion-MNIST k-NN %", True, True),
    "patches_linear": ("photo-patches linear %", True, True),
    "patches_knn": ("photo-patches k-NN %", True, True),
    "seg_miou": ("category mIoU % (renders)", True, False),
    "depth_absrel": ("depth AbsRel (renders)", False, False),
    "normal_deg": ("normal error ° (renders)", False, False),
    "contour_f": ("contour ODS-F (renders)", True, False),
    "castel_probe_absrel": ("castel depth AbsRel, castel probe (real)", False, True),
    "castel_transfer_absrel": ("castel depth AbsRel, render probe (real)", False, True),
    "middlebury_transfer_absrel": ("Middlebury depth AbsRel, render probe (real)", False, True),
    "castel_zeroshot_absrel": ("castel depth AbsRel, predict heads (real)", False, True),
    "middlebury_zeroshot_absrel": ("Middlebury depth AbsRel, predict heads (real)", False, True),
}

#: metric -> label: shown per arm with its spread, never judged better or worse
DIAGNOSTICS: dict[str, str] = {"fmnist_erank": "Fashion-MNIST effective rank (pooled c5)"}

#: decimals shown per metric (the rest: 3)
DIGITS = {m: 1 for m in ("seg_miou", "normal_deg", "fmnist_erank")} | {
    f"{task}_{probe}": 1 for task in ("fmnist", "patches") for probe in ("linear", "knn")
}

#: probe task -> the report's name of its learning rate column
PROBE_TASKS = ("segmentation", "depth", "normal", "contour", "castel")


def _digits(metric: str) -> int:
    return DIGITS.get(metric, 3)


def summarise_arms(runs: Mapping[str, Mapping[int, dict]]) -> dict[str, dict]:
    """arm -> {"seeds", "train_seconds" (mean), "metrics": {metric: summarise(values over seeds)}} for the
    metrics every seed of the arm has; arms in `ARMS_ORDER`, unknown ones after."""
    return summarise_quality_arms(runs, ARMS_ORDER, {**METRICS, **DIAGNOSTICS})


def borrowed_spreads(arms: Mapping[str, dict]) -> dict[str, Optional[float]]:
    """metric -> the largest spread of any multi-seed arm (None when no arm has one): a one-seed arm's spread."""
    out = {}
    for m in METRICS:
        spreads = [
            a["metrics"][m]["spread"] for a in arms.values() if a["metrics"].get(m, {}).get("spread") is not None
        ]
        out[m] = max(spreads, default=None)
    return out


def compare_pairs(arms: Mapping[str, dict]) -> dict[str, list[dict]]:
    """metric -> one row per pair (a, b) of arms that both have it, in arm order: {"a", "b", "diff" (> 0: a
    better), "margin" (sum of spreads; None without any spread), "real", "verdict"}; verdict is "A better",
    "tie" or "no spread"."""
    fallback = borrowed_spreads(arms)
    names = list(arms)
    pairs: dict[str, list[dict]] = {}
    for m, (_, higher, _) in METRICS.items():
        rows = []
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                sa, sb = arms[a]["metrics"].get(m), arms[b]["metrics"].get(m)
                if sa is None or sb is None:
                    continue
                spread_a = fallback[m] if sa["spread"] is None else sa["spread"]
                spread_b = fallback[m] if sb["spread"] is None else sb["spread"]
                diff = sa["mean"] - sb["mean"]
                diff = diff if higher else -diff
                if spread_a is None or spread_b is None:
                    rows.append({"a": a, "b": b, "diff": diff, "margin": None, "real": False, "verdict": "no spread"})
                    continue
                real = beyond_spread(diff, spread_a, spread_b)
                verdict = (f"{a} better" if diff > 0 else f"{b} better") if real else "tie"
                rows.append(
                    {"a": a, "b": b, "diff": diff, "margin": spread_a + spread_b, "real": real, "verdict": verdict}
                )
        if rows:
            pairs[m] = rows
    return pairs


def _column(metric: str) -> str:
    """A table header: the metric's label and which way is better (none for a diagnostic)."""
    if metric in DIAGNOSTICS:
        return DIAGNOSTICS[metric]
    label, higher, _ = METRICS[metric]
    return f"{label} {'↑' if higher else '↓'}"


def _cell(s: Optional[dict], digits: int) -> str:
    if s is None:
        return "–"
    spread = "" if s["spread"] is None else f" ± {s['spread']:.{digits}f}"
    return f"{s['mean']:.{digits}f}{spread}"


def _pair_sentence(metric: str, rows: list[dict]) -> str:
    """One bullet: the pairs that differ beyond the spread, or why none does."""
    label = METRICS[metric][0]
    d = _digits(metric)
    real = [r for r in rows if r["real"]]
    if all(r["margin"] is None for r in rows):
        return f"- **{label}**: not judged: no arm has more than one seed, so there is no spread to judge by."
    if not real:
        top = max((r for r in rows if r["margin"] is not None), key=lambda r: abs(r["diff"]) - r["margin"])
        return (
            f"- **{label}**: no pair of the {len(rows)} differs beyond the spread; the closest, "
            f"`{top['a']}` - `{top['b']}` = {top['diff']:+.{d}f}, stays within its margin of ±{top['margin']:.{d}f}."
        )
    parts = []
    for r in real:
        win, lose = (r["a"], r["b"]) if r["diff"] > 0 else (r["b"], r["a"])
        parts.append(f"`{win}` > `{lose}` ({abs(r['diff']):.{d}f} against ±{r['margin']:.{d}f})")
    return f"- **{label}**: {len(real)} of {len(rows)} pairs beyond the spread: " + "; ".join(parts) + "."


def _arm_of(run: str) -> str:
    """``contrast-seed0`` -> ``contrast``."""
    return run.rsplit("-seed", 1)[0]


def _noise_rows(results: dict) -> list[str]:
    """The probe-noise table: per metric and noise backbone, the std over probe seeds and the arm's spread."""
    noise = results.get("probe_noise") or {}
    if not noise:
        return []
    header = []
    for run, per_metric in noise.items():
        k = len(next(iter(per_metric.values()))["values"])
        header += [f"`{run}`: probe std ({k} probe seeds)", f"`{_arm_of(run)}`: spread over pretraining seeds"]
    lines = [
        "",
        "## The probes' own noise",
        "",
        "The probes of each listed backbone refitted with other probe seeds (the mini-batch order; the heads "
        "start from the same constant predictor) at the learning rates its check chose: the standard deviation "
        "over probe seeds, next to the arm's spread over pretraining seeds. A spread well above the probe's own "
        "noise is the backbones' doing, not probe luck.",
        "",
        "| metric | " + " | ".join(header) + " |",
        "| --- |" + " --- |" * len(header),
    ]
    for m in METRICS:
        if not any(m in per_metric for per_metric in noise.values()):
            continue
        d = _digits(m)
        cells = []
        for run, per_metric in noise.items():
            n = per_metric.get(m)
            s = results["arms"].get(_arm_of(run), {}).get("metrics", {}).get(m)
            cells.append("–" if n is None or n["std"] is None else f"{n['std']:.{d}f}")
            cells.append("–" if s is None or s["spread"] is None else f"{s['spread']:.{d}f}")
        lines.append(f"| {METRICS[m][0]} | " + " | ".join(cells) + " |")
    return lines


def _probe_rows(results: dict) -> list[str]:
    lines = [
        "",
        "## Probe learning rates and convergence",
        "",
        "Per arm, the learning rate each task's learning-rate check chose on its probe-validation split "
        "(one value per seed when they differ), how much the loss over all probe-train views changed in the "
        "last 10 % of the steps (the largest over tasks and seeds), and the tasks whose chosen rate is an end "
        "of the grid.",
        "",
        "| arm | " + " | ".join(f"{t} lr" for t in PROBE_TASKS) + " | loss change, last 10 % | at a grid end |",
        "| --- |" + " --- |" * (len(PROBE_TASKS) + 2),
    ]
    for arm, per_seed in results["runs"].items():
        chosen: dict[str, list[str]] = {t: [] for t in PROBE_TASKS}
        change, edges = 0.0, set()
        for record in per_seed.values():
            for t, p in record.get("probes", {}).items():
                lr = f"{p['lr_check']['chosen']:g}"
                if t in chosen and lr not in chosen[t]:
                    chosen[t].append(lr)
                c = p["convergence"]["last_tenth_change"]
                change = max(change, c) if c is not None and math.isfinite(c) else change
                if p["lr_check"]["at_edge"]:
                    edges.add(t)
        cells = [", ".join(chosen[t]) or "–" for t in PROBE_TASKS]
        lines.append(
            f"| {arm} | " + " | ".join(cells) + f" | {100 * change:.2f} % | {', '.join(sorted(edges)) or 'none'} |"
        )
    return lines


def dense_markdown(results: dict) -> str:
    """report.md: settings, arms x metrics (mean ± spread), the probes' noise, learning rates and
    convergence, and the pairwise verdicts."""
    arms, st = results["arms"], results["settings"]
    metrics = [m for m in [*METRICS, *DIAGNOSTICS] if any(m in a["metrics"] for a in arms.values())]
    lines = [
        "# synthssl dense benchmark",
        "",
        f"Budget `{results['budget']}`: ResNet-18, {st['image_size']} px, {st['batch_size']} view pairs per "
        f"step, {st['steps']} steps ({st['optim']}, lr {st['lr']}), {st['scenes']} rendered training scenes. "
        f"Frozen features (levels {', '.join(st['probe_levels'])} at stride {st['probe_stride']}), linear "
        f"probes trained {st['probe_steps']} steps on {st['probe_train_scenes']} held-out scenes and scored on "
        f"{st['probe_test_scenes']} others ({st['render_size']} px, rendered with another seed than training). "
        f"Real depth: the images fed with their shorter side at {st.get('real_size') or 2 * st['image_size']} px; "
        "the castel probe trains on the first half of ViSP's castel frames and is scored on the second half "
        "(AbsRel in metres), the render probe's depth head and the exported depth heads (zero-shot, "
        "`train-ssl predict`'s code) are median-scaled per image. "
        "Values: mean ± spread (sample std over pretraining seeds). "
        f"Training and evaluation of all runs: {results.get('run_seconds', 0) / 60:.1f} min "
        f"(this invocation: {results.get('total_seconds', 0) / 60:.1f} min).",
        "",
        "| arm | seeds | train time (s) | " + " | ".join(_column(m) for m in metrics) + " |",
        "| --- | --- | --- |" + " --- |" * len(metrics),
    ]
    for arm, a in arms.items():
        cells = [_cell(a["metrics"].get(m), _digits(m)) for m in metrics]
        lines.append(f"| {arm} | {a['seeds']} | {a['train_seconds']:.0f} | " + " | ".join(cells) + " |")
    lines += _noise_rows(results)
    lines += _probe_rows(results)
    if results.get("pairs"):
        lines += [
            "",
            "## Pairwise verdicts",
            "",
            "A difference of two arms' means is real only when it exceeds the sum of their spreads over "
            "pretraining seeds (an arm with one seed borrows the largest spread of the multi-seed arms); "
            "every other pair is a tie.",
            "",
        ]
        lines += [_pair_sentence(m, results["pairs"][m]) for m in METRICS if m in results["pairs"]]
    skipped = results.get("skipped") or {}
    if skipped:
        lines += ["", "## Not measured", ""] + [f"- {task}: {why}" for task, why in skipped.items()]
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    lines.append("")
    return "\n".join(lines)
