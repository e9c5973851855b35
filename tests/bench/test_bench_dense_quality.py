"""bench/bench_dense_quality.py: pairwise verdicts only beyond the spread, the report's tables, the
probes' learning-rate check on a separable problem, the probe-noise numbers, and a tiny end-to-end
run that writes every output and reuses it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dense_quality_report import compare_pairs, dense_markdown, summarise_arms

from synthssl.train.eval.dense_probe_protocol import (
    ProbeProtocol,
    check_learning_rates,
    convergence,
    probe_noise,
    run_protocol,
)

ROOT = Path(__file__).resolve().parents[2]


def _record(seg: float, depth: float, train_seconds: float = 10.0) -> dict:
    return {"metrics": {"seg_miou": seg, "depth_absrel": depth}, "train_seconds": train_seconds}


def _fixed_runs() -> dict:
    return {
        "random": {0: _record(10.0, 0.30, 0.0), 1: _record(11.0, 0.31, 0.0), 2: _record(12.0, 0.32, 0.0)},
        "contrast": {0: _record(14.0, 0.30), 1: _record(15.0, 0.29), 2: _record(16.0, 0.31)},
        "dsc": {0: _record(12.5, 0.20, 20.0)},
    }


def test_pairs_are_real_only_beyond_the_sum_of_spreads_and_one_seed_arms_borrow_the_largest():
    arms = summarise_arms(_fixed_runs())
    assert list(arms) == ["random", "contrast", "dsc"]  # report order
    assert arms["random"]["metrics"]["seg_miou"] == {"mean": 11.0, "spread": 1.0, "values": [10.0, 11.0, 12.0]}
    assert arms["dsc"]["metrics"]["seg_miou"]["spread"] is None
    pairs = compare_pairs(arms)
    seg = {(r["a"], r["b"]): r for r in pairs["seg_miou"]}
    # contrast 15 ± 1 against random 11 ± 1: 4 > 2, contrast better
    assert seg[("random", "contrast")] == {
        "a": "random",
        "b": "contrast",
        "diff": -4.0,
        "margin": 2.0,
        "real": True,
        "verdict": "contrast better",
    }
    # dsc (one seed) borrows the largest spread, 1.0: 12.5 - 11 = 1.5 < 2 is a tie
    assert seg[("random", "dsc")]["verdict"] == "tie" and seg[("random", "dsc")]["margin"] == 2.0
    # depth: lower is better, so the sign flips; spreads 0.01 each, dsc borrows 0.01
    depth = {(r["a"], r["b"]): r for r in pairs["depth_absrel"]}
    assert depth[("contrast", "dsc")]["diff"] == pytest.approx(-0.10)
    assert depth[("contrast", "dsc")]["verdict"] == "dsc better"
    assert depth[("random", "contrast")]["verdict"] == "tie"  # 0.01 against 0.02


def test_no_pair_is_judged_without_any_spread():
    pairs = compare_pairs(summarise_arms({"random": {0: _record(10.0, 0.3)}, "dsc": {0: _record(20.0, 0.2)}}))
    assert [r["verdict"] for r in pairs["seg_miou"]] == ["no spread"]
    assert pairs["seg_miou"][0]["margin"] is None and not pairs["seg_miou"][0]["real"]


def _results() -> dict:
    runs = _fixed_runs()
    probes = {
        "segmentation": {
            "lr_check": {"metric": "miou_present", "scores": {"0.01": 11.0}, "chosen": 0.01, "at_edge": True},
            "convergence": {"start": 2.0, "end": 1.0, "last_tenth_change": 0.004},
        }
    }
    for per_seed in runs.values():
        for r in per_seed.values():
            r["probes"] = probes
    arms = summarise_arms(runs)
    return {
        "budget": "cpu",
        "settings": {
            "image_size": 48,
            "batch_size": 16,
            "steps": 300,
            "optim": "lars",
            "lr": 1.2,
            "scenes": 1024,
            "probe_levels": ["c3", "c4", "c5"],
            "probe_stride": 8,
            "probe_steps": 400,
            "probe_train_scenes": 256,
            "probe_test_scenes": 128,
            "render_size": 64,
        },
        "runs": {arm: {str(s): r for s, r in per.items()} for arm, per in runs.items()},
        "arms": arms,
        "pairs": compare_pairs(arms),
        "probe_noise": {"random-seed0": {"seg_miou": probe_noise([10.0, 10.5, 11.0])}},
        "skipped": {"castel": "synthssl.train.eval.castel is not importable (no module)"},
        "total_seconds": 120.0,
        "run_seconds": 60.0,
    }


def test_report_tables_on_fixed_numbers():
    text = dense_markdown(_results())
    lines = text.splitlines()
    assert "| arm | seeds | train time (s) | category mIoU % (renders) ↑ | depth AbsRel (renders) ↓ |" in lines
    assert "| random | 3 | 0 | 11.0 ± 1.0 | 0.310 ± 0.010 |" in lines
    assert "| contrast | 3 | 10 | 15.0 ± 1.0 | 0.300 ± 0.010 |" in lines
    assert "| dsc | 1 | 20 | 12.5 | 0.200 |" in lines
    # probe noise (std of 10, 10.5, 11 = 0.5) beside the spread over pretraining seeds (1.0)
    assert "| category mIoU % (renders) | 0.5 | 1.0 |" in lines
    assert "| random | 0.01 | – | – | – | – | 0.40 % | segmentation |" in lines
    assert (
        "- **category mIoU % (renders)**: 2 of 3 pairs beyond the spread: `contrast` > `random` (4.0 against ±2.0); "
        "`contrast` > `dsc` (2.5 against ±2.0)." in lines
    )
    assert (
        "- **depth AbsRel (renders)**: 2 of 3 pairs beyond the spread: `dsc` > `random` (0.110 against ±0.020); "
        "`dsc` > `contrast` (0.100 against ±0.020)." in lines
    )
    assert "- castel: synthssl.train.eval.castel is not importable (no module)" in lines


def test_the_effective_rank_is_shown_with_its_spread_and_never_judged():
    results = _results()
    for arm, ranks in (("random", [18.0, 19.0, 20.0]), ("contrast", [4.0, 4.5, 5.0]), ("dsc", [9.0])):
        for seed, rank in enumerate(ranks):
            results["runs"][arm][str(seed)]["metrics"]["fmnist_erank"] = rank
    runs = {arm: {int(s): r for s, r in per.items()} for arm, per in results["runs"].items()}
    results["arms"] = summarise_arms(runs)
    results["pairs"] = compare_pairs(results["arms"])
    assert "fmnist_erank" not in results["pairs"]
    lines = dense_markdown(results).splitlines()
    assert (
        "| arm | seeds | train time (s) | category mIoU % (renders) ↑ | depth AbsRel (renders) ↓ "
        "| Fashion-MNIST effective rank (pooled c5) |" in lines
    )
    assert "| random | 3 | 0 | 11.0 ± 1.0 | 0.310 ± 0.010 | 19.0 ± 1.0 |" in lines
    assert "| contrast | 3 | 10 | 15.0 ± 1.0 | 0.300 ± 0.010 | 4.5 ± 0.5 |" in lines
    assert "| dsc | 1 | 20 | 12.5 | 0.200 | 9.0 |" in lines


def test_probe_noise_and_convergence_numbers():
    assert probe_noise([1.0, 2.0, 3.0]) == {"values": [1.0, 2.0, 3.0], "mean": 2.0, "std": 1.0}
    assert probe_noise([5.0])["std"] is None
    conv = convergence([(0, 2.0), (50, 1.0), (90, 0.5), (100, 0.499)])
    assert conv["start"] == 2.0 and conv["end"] == 0.499
    assert conv["last_tenth_change"] == pytest.approx(0.002)


def _separable(n_views: int, seed: int, classes: int = 4) -> tuple[torch.Tensor, dict, np.ndarray]:
    """Views whose features are a known linear function of their labels: each 8 x 8 grid column holds one
    class (vertical stripes of 8 px, so the bilinear upsampling never blurs a pixel across a class), the
    feature of a cell is a fixed linear map of its class's one-hot code; depth is 2 m + 1 m per class,
    constant in each view (one class per view for depth, so no stripe boundary enters it)."""
    g = np.random.default_rng(seed)
    mixing = np.random.default_rng(123).normal(size=(classes, 6))  # the known linear map
    stripes = g.integers(0, classes, size=(n_views, 8))
    cells = np.repeat(stripes[:, None, :], 8, axis=1)  # [N, 8 rows, 8 columns]
    features = torch.from_numpy(np.eye(classes)[cells] @ mixing).half()  # [N, 8, 8, 6]
    labels = torch.from_numpy(np.repeat(np.repeat(cells, 8, axis=1), 8, axis=2)).long()  # [N, 64, 64]
    return features, {"segmentation": labels}, np.arange(n_views)


def test_learning_rate_check_picks_a_converging_rate_and_the_probe_is_exact_on_separable_features():
    train_raw, train_targets, groups = _separable(24, seed=0)
    test_raw, test_targets, _ = _separable(8, seed=1)
    protocol = ProbeProtocol(lrs=(1e-6, 3e-2, 1e-1), steps=150, batch_size=8)
    checks = check_learning_rates(train_raw, train_targets, groups, protocol, num_categories=4)
    seg = checks["segmentation"]
    assert seg.scores[3e-2] == 100.0 and seg.scores[1e-1] == 100.0  # separable: both converge exactly
    assert seg.scores[1e-6] < 100.0  # a rate too small to fit in 150 steps
    assert seg.chosen == 3e-2 and not seg.at_edge  # a tie keeps the smaller rate
    result = run_protocol(train_raw, train_targets, groups, test_raw, test_targets, protocol, num_categories=4)
    assert result.metrics["segmentation"]["miou_present"] == 100.0
    curve = result.convergence["segmentation"]
    assert curve["start"] == pytest.approx(math.log(4), abs=1e-6)  # zero logits: cross-entropy ln K
    # the loss cannot reach 0: the bilinear upsampling blends two stripes' logits next to their border
    assert curve["end"] < 0.15 and curve["last_tenth_change"] < 0.01


def test_probe_noise_is_zero_when_every_step_sees_every_view_and_real_otherwise():
    train_raw, train_targets, groups = _separable(12, seed=0)
    test_raw, test_targets, _ = _separable(4, seed=1)
    for batch, zero in ((12, True), (2, False)):
        protocol = ProbeProtocol(lrs=(1e-3,), steps=20, batch_size=batch)
        result = run_protocol(
            train_raw, train_targets, groups, test_raw, test_targets, protocol, num_categories=4, noise_seeds=(1, 2)
        )
        miou = [rep["segmentation"]["miou_present"] for rep in result.repeats]
        assert len(miou) == 3
        assert (probe_noise(miou)["std"] == 0.0) is zero, miou  # full batches: the seed changes nothing


def test_every_arm_resolves_in_its_config_with_the_equal_budget(tmp_path):
    from bench_dense_quality import ARMS, BUDGETS, arm_config, arm_overrides
    from bench_runs import resolved_settings

    budget = BUDGETS["cpu"]
    settings = {
        arm: resolved_settings(arm_config(arm), arm_overrides(arm, 0, budget, tmp_path, tmp_path / arm)) for arm in ARMS
    }
    for arm, s in settings.items():
        assert (s["train"]["steps"], s["data"]["image_size"], s["optim"]["name"]) == (300, 48, "lars"), arm
    assert (
        settings["dsc_instance"]["method"]["weight_pixel"],
        settings["dsc_instance"]["method"]["weight_semantic"],
    ) == (0.0, 0.0)
    assert settings["dsc_pixel"]["method"]["weight_pixel"] == 1.0
    assert settings["dsc_pixel"]["method"]["weight_semantic"] == 0.0
    assert settings["dsc"]["method"]["weight_semantic"] == 1.0
    props = settings["contrast_properties"]["method"]
    assert props["synthetic"]["property_weight"] == settings["full"]["method"]["synthetic"]["property_weight"] == 3.0
    assert props["synthetic"]["adversarial"] == "none" and props["photo_decorrelation_weight"] == 0.0
    assert settings["densecl"]["method"]["dense_warmup_steps"] == 75  # a quarter of the steps, as DSC's warm-up
    assert settings["dsc"]["method"]["semantic_warmup_steps"] == 75
    assert settings["mocov2"]["method"]["name"] == "mocov2" and settings["mocov2"]["data"]["photos"] is None


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--arms", "nope"], "--arms"),
        (["--set", "probe_lrs=[0.01,0]"], "probe_lrs"),
        (["--set", "probe_lrs=[0.01]"], "same length"),
        (["--set", "probe_levels=[c9]"], "probe_levels"),
        (["--set", "noise_arms=[nope]"], "noise_arms"),
        (["--set", "stepz=3"], "stepz"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, needle):
    from bench_dense_quality import main

    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "out"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and err[0].startswith("bench_dense_quality: error:"), err
    assert not (tmp_path / "out").exists()  # refused before anything was written


TINY = [
    "steps=2",
    "scenes=8",
    "image_size=32",
    "render_size=32",
    "batch_size=4",
    "warmup_steps=1",
    "random_seeds=1",
    "probe_train_scenes=4",
    "probe_test_scenes=2",
    "probe_steps=4",
    "probe_batch=4",
    "probe_lrs=[0.001,0.01]",
    "probe_depth_lrs=[0.0003,0.001]",
    "noise_arms=[random]",
    "noise_seeds=2",
    "fmnist_train=200",
    "fmnist_test=100",
    "patches=false",
    "workers=0",
    "render_workers=1",
    "threads=1",
]


@pytest.mark.gl
@pytest.mark.slow
def test_tiny_run_writes_every_output_and_a_rerun_reuses_it(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "bench/bench_dense_quality.py"),
        "--out",
        str(tmp_path),
        "--arms",
        "random,contrast_properties",
        "--seeds",
        "1",
        "--set",
        *TINY,
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    results = json.loads(first.stdout.strip().splitlines()[-1])
    assert {"budget", "settings", "runs", "arms", "pairs", "probe_noise", "skipped", "total_seconds"} <= set(results)
    assert set(results["arms"]) == {"random", "contrast_properties"}
    metrics = results["arms"]["contrast_properties"]["metrics"]  # an arm with depth heads
    assert {
        "seg_miou",
        "depth_absrel",
        "normal_deg",
        "contour_f",
        "fmnist_linear",
        "fmnist_knn",
        "fmnist_erank",
    } <= set(metrics)
    assert not {"patches_linear", "patches_knn"} & set(metrics)  # patches=false
    for name in ("middlebury", "castel"):
        real = {f"{name}_transfer_absrel", f"{name}_zeroshot_absrel"} | (
            {"castel_probe_absrel"} if name == "castel" else set()
        )
        assert (real <= set(metrics)) != (name in results["skipped"]), name  # measured, or said why not
    assert not {"middlebury_zeroshot_absrel", "castel_zeroshot_absrel"} & set(results["arms"]["random"]["metrics"])
    assert len(results["probe_noise"]["random-seed0"]["seg_miou"]["values"]) == 2
    record = results["runs"]["contrast_properties"]["0"]
    assert set(record["probes"]) >= {"segmentation", "depth", "normal", "contour"}
    assert record["probes"]["depth"]["lr_check"]["chosen"] in (0.0003, 0.001)
    assert [r["verdict"] for r in results["pairs"]["seg_miou"]] == ["no spread"]  # one seed each
    for name in (
        "results.json",
        "report.md",
        "contrast_properties-seed0/export/backbone.pt",
        "contrast_properties-seed0/dense_eval.json",
        "contrast_properties-seed0/global_eval.json",
    ):
        assert (tmp_path / name).is_file(), name
    stamps = {
        f"contrast_properties-seed0/{p}": (tmp_path / "contrast_properties-seed0" / p).stat().st_mtime_ns
        for p in ("export/backbone.pt", "dense_eval.json", "global_eval.json")
    }
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in stamps} == stamps  # training and probes reused
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert again["arms"] == results["arms"]
    # another subset into the same folder: the report still covers the arm finished before, untouched
    third = subprocess.run([*cmd[:5], "random", *cmd[6:]], capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    last = json.loads(third.stdout.strip().splitlines()[-1])
    assert last["arms_run"] == ["random"] and last["arms_from_earlier_runs"] == ["contrast_properties"]
    assert last["arms"] == results["arms"]
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in stamps} == stamps
