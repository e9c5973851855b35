"""bench/bench_quality.py: verdicts are called real only beyond the spread; a tiny end-to-end run
writes every output, and a re-run reuses what is finished."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from quality_report import METRICS, compare_arms, quality_chart, quality_markdown

from synthssl.train.eval.photo_patches import DEFAULT_PHOTO_PATCHES_ROOT, PHOTO_PATCHES_SOURCES

ROOT = Path(__file__).resolve().parents[2]


def _record(**metrics) -> dict:
    full = {m: 50.0 for m in METRICS}
    full.update(metrics)
    return {"metrics": full, "train_seconds": 10.0}


def test_difference_is_real_only_beyond_the_sum_of_spreads():
    runs = {
        "random": {0: _record(fmnist_knn=80.0), 1: _record(fmnist_knn=81.0), 2: _record(fmnist_knn=79.0)},  # std 1
        "full": {0: _record(fmnist_knn=83.5), 1: _record(fmnist_knn=82.5)},  # mean 83, std 0.707
        "contrast": {0: _record(fmnist_knn=82.0), 1: _record(fmnist_knn=83.0)},  # mean 82.5
    }
    out = compare_arms(runs)
    assert out["arms"]["random"]["metrics"]["fmnist_knn"]["spread"] == pytest.approx(1.0)
    vs_random = out["comparisons"]["random"]["fmnist_knn"]
    assert vs_random["diff"] == pytest.approx(3.0) and vs_random["margin"] == pytest.approx(1.0 + 0.5**0.5)
    assert vs_random["real"] and vs_random["verdict"] == "better"
    vs_contrast = out["comparisons"]["contrast"]["fmnist_knn"]
    assert not vs_contrast["real"] and vs_contrast["verdict"] == "within spread"


def test_lower_is_better_metrics_flip_the_sign_and_single_seed_arms_borrow_a_spread():
    runs = {
        "full": {0: _record(depth_absrel=0.10), 1: _record(depth_absrel=0.12)},
        "dsc": {0: _record(depth_absrel=0.20)},
    }
    out = compare_arms(runs)
    assert out["arms"]["dsc"]["metrics"]["depth_absrel"]["spread"] is None
    row = out["comparisons"]["dsc"]["depth_absrel"]
    spread = float(np.std([0.10, 0.12], ddof=1))
    assert row["diff"] == pytest.approx(0.09) and row["margin"] == pytest.approx(2 * spread)
    assert row["verdict"] == "better"
    text = quality_markdown({"budget": "cpu", "settings": _settings(), "total_seconds": 60, **out})
    assert "| dsc | 1 |" in text and "better" in text
    chart = quality_chart({"budget": "cpu", **out})
    assert chart.dtype == np.uint8 and chart.ndim == 3 and (chart != 255).any()


def _settings() -> dict:
    return {
        "image_size": 48,
        "batch_size": 16,
        "steps": 300,
        "optim": "adamw",
        "lr": 1e-3,
        "warmup_steps": 10,
        "scenes": 1024,
        "fmnist_train": 10000,
        "fmnist_test": 10000,
        "dense_test_scenes": 16,
    }


@pytest.mark.slow
def test_bad_options_are_one_line_errors(tmp_path):
    for args in (["--arms", "nope"], ["--set", "stepz=3"], ["--set", "steps=abc"]):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "bench/bench_quality.py"), "--out", str(tmp_path), *args],
            capture_output=True,
            text=True,
        )
        assert proc.returncode != 0
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_set_reads_numbers_as_the_config_engine_does():
    from bench_quality import BUDGETS, apply_sets

    budget = apply_sets(BUDGETS["cpu"], ["lr=5e-4", "weight_decay=1e-2", "steps=20"])
    assert (budget.lr, budget.weight_decay, budget.steps) == (5e-4, 1e-2, 20)


def test_small_stem_is_a_budget_field_so_every_arm_gets_it_random_init_included(tmp_path):
    from bench_quality import BUDGETS, apply_sets, random_export, train_overrides

    from synthssl.train.export import load_backbone
    from synthssl.train.models.backbone import is_small_stem

    budget = apply_sets(BUDGETS["cpu"], ["small_stem=true"])
    for arm in ("simclr_photos", "contrast", "full", "dsc"):
        assert "model.small_stem=true" in train_overrides(arm, 0, budget, tmp_path, tmp_path / arm)
    assert "model.small_stem=false" in train_overrides("full", 0, BUDGETS["cpu"], tmp_path, tmp_path / "std")
    random_export(tmp_path / "random-seed0", 0, budget)
    trunk, meta = load_backbone(tmp_path / "random-seed0" / "export")
    assert meta["small_stem"] is True
    assert is_small_stem(trunk)


TINY = [
    "steps=2",
    "scenes=8",
    "heldout_scenes=6",
    "image_size=32",
    "render_size=32",
    "batch_size=4",
    "warmup_steps=1",
    "fmnist_train=200",
    "fmnist_test=100",
    "dense_train_scenes=3",
    "dense_test_scenes=2",
    "dense_steps=3",
    "random_seeds=2",
    "workers=0",
    "render_workers=1",
    "device=cpu",
    "threads=1",
    "channels_last=false",
]


@pytest.mark.gl
@pytest.mark.slow
@pytest.mark.skipif(
    not (DEFAULT_PHOTO_PATCHES_ROOT / PHOTO_PATCHES_SOURCES[0].file).is_file(),
    reason="photo-patches photographs not unpacked (scripts/setup.sh)",
)
def test_gpu_hour_preset_smoke_on_cpu_writes_everything_and_reuses_it(tmp_path):
    cmd = [
        sys.executable,
        str(ROOT / "bench/bench_quality.py"),
        "--budget",
        "gpu-hour",
        "--out",
        str(tmp_path),
        "--arms",
        "random,full",
        "--seeds",
        "1",
        "--set",
        *TINY,
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    results = json.loads(first.stdout.strip().splitlines()[-1])
    assert set(results["arms"]) == {"random", "full"} and results["arms"]["random"]["seeds"] == 2
    assert set(METRICS) <= set(results["arms"]["full"]["metrics"])
    for name in (
        "results.json",
        "report.md",
        "quality.png",
        "full-seed0/export/backbone.pt",
        "full-seed0/export/backbone.json",
        "full-seed0/eval.json",
        "random-seed1/export/backbone.pt",
    ):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "results.json").read_text())["comparisons"]["random"]
    mtime = (tmp_path / "full-seed0/export/backbone.pt").stat().st_mtime_ns
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert (tmp_path / "full-seed0/export/backbone.pt").stat().st_mtime_ns == mtime  # training reused
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert again["arms"]["full"]["metrics"] == results["arms"]["full"]["metrics"]  # evaluation reused
    other = subprocess.run(
        cmd + ["--train-set", "method.synthetic.property_weight=0.5"], capture_output=True, text=True, timeout=600
    )
    assert other.returncode == 2 and "other settings" in other.stderr  # never mixed into the same --out


def test_an_evaluation_is_redone_when_the_heldout_renders_change(tmp_path):
    """A record scored on other held-out bytes is never reused (its dense probes saw other scenes)."""
    import torchvision
    from bench_quality import BUDGETS, evaluate_run, evaluation_settings, shards_sha256

    from synthssl.train.export import save_backbone

    heldout = tmp_path / "heldout"
    heldout.mkdir()

    def write_manifest(*digests: str) -> None:
        shards = [{"file": f"shard-{k:05d}.h5", "sha256": d} for k, d in enumerate(digests)]
        (heldout / "manifest.json").write_text(json.dumps({"shards": shards}))

    class Probes:  # stands in for Evaluator: its settings key the reuse, each call is counted
        metric_names = ["fmnist_knn"]
        calls = 0

        def __init__(self):
            self.settings = evaluation_settings(BUDGETS["cpu"], heldout)

        def __call__(self, export):
            Probes.calls += 1
            return {"fmnist_knn": 50.0}

    run = tmp_path / "full-seed0"
    save_backbone(
        torchvision.models.resnet18(),
        run / "export",
        arch="resnet18",
        small_stem=False,
        image_size=32,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        method="synthetic_contrast",
        steps=1,
    )
    write_manifest("a" * 64, "b" * 64)
    first = shards_sha256(heldout)
    evaluate_run(Probes(), run, 1.0)
    evaluate_run(Probes(), run, 1.0)
    assert Probes.calls == 1  # same held-out bytes: reused
    write_manifest("a" * 64, "c" * 64)  # one shard rendered again with other bytes
    assert shards_sha256(heldout) != first
    evaluate_run(Probes(), run, 1.0)
    assert Probes.calls == 2
    (heldout / "manifest.json").unlink()
    with pytest.raises(SystemExit, match="heldout/manifest.json"):
        shards_sha256(heldout)


def test_the_full_stream_arm_is_full_trained_on_the_training_renders_config_streamed(tmp_path):
    from bench_quality import BUDGETS, apply_sets, stream_config, train_overrides

    budget = apply_sets(BUDGETS["cpu"], ["render_workers=3"])
    stream = stream_config(tmp_path, budget, ["camera.overlap=[0.4,0.8]"])
    assert stream.name.startswith("stream-") and stream == stream_config(tmp_path, budget, ["camera.overlap=[0.4,0.8]"])
    assert stream != stream_config(tmp_path, budget, [])  # other scenes: another file, so never reused
    from synthssl.core.yaml_numbers import safe_load

    assert safe_load(stream.read_text()) == {
        "appearance": {"photo_dir": budget.photos},
        "camera": {"overlap": [0.4, 0.8]},
        "seed": 0,
        "size": budget.render_size,
    }
    full = train_overrides("full", 0, budget, tmp_path / "shards", tmp_path / "run")
    streamed = train_overrides("full_stream", 0, budget, tmp_path / "shards", tmp_path / "run", stream)
    assert set(streamed) - set(full) == {"data.shards=[]", f"data.stream={stream}", "data.stream_workers=3"}
    assert set(full) - set(streamed) == {f"data.shards=[{tmp_path / 'shards'}]"}
