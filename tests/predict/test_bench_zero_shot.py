"""bench/bench_zero_shot.py at a tiny budget: both arms train on the same budget and are scored."""

from __future__ import annotations

import json
import math

import bench_zero_shot
import numpy as np
import pytest
import yaml

from synthssl.train.eval.middlebury import load_motorcycle
from synthssl.train.predict.model import load_predictor
from synthssl.train.predict.zero_shot import score_zero_shot

TINY = [
    "data.image_size=32",
    "data.batch_size=4",
    "data.workers=0",
    "method.projection.hidden_dim=64",
    "method.synthetic.decoder_width=16",
    "method.synthetic.disc_width=32",
    "model.channels_last=false",
]


@pytest.mark.slow
def test_both_arms_train_alike_and_are_scored(
    analytic_shards, few_photos, fake_middlebury, heads_run, tmp_path, capsys
):
    argv = [
        "--shards",
        str(analytic_shards),
        "--photos",
        str(few_photos),
        "--out",
        str(tmp_path),
        "--steps",
        "2",
        "--device",
        "cpu",
        "--root",
        str(fake_middlebury),
        "--set",
        *TINY,
        "--score",
        f"tiny={heads_run}",
    ]
    assert bench_zero_shot.main(argv) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(results["arms"]) == {"adapted", "no_adaptation"} and results["size"] == 64
    real = load_motorcycle(fake_middlebury)
    for arm, adversarial in (("adapted", "gan"), ("no_adaptation", "none")):
        cfg = yaml.safe_load((tmp_path / f"{arm}-seed0" / "config.yaml").read_text())
        assert cfg["method"]["synthetic"]["adversarial"] == adversarial and cfg["train"]["steps"] == 2
        assert cfg["data"]["image_size"] == 32
        # Each arm's score is its run's heads scored by predict's code at twice the training size;
        # one seed: the mean is that seed's score and the spread is 0.
        direct = score_zero_shot(load_predictor(tmp_path / f"{arm}-seed0"), real, 64)
        for metric in bench_zero_shot.METRICS:
            assert results["arms"][arm]["per_seed"][0][metric] == pytest.approx(direct[metric], nan_ok=True), metric
            assert results["arms"][arm][metric] == results["arms"][arm]["per_seed"][0][metric]
            assert results["arms"][arm][f"{metric}_std"] == 0.0
    diff = results["adapted_minus_no_adaptation"]["abs_rel"]
    assert diff == pytest.approx(results["arms"]["adapted"]["abs_rel"] - results["arms"]["no_adaptation"]["abs_rel"])
    # The constant reference, from the definitions: median scaling makes it the median depth.
    depth = real.depth[real.valid]
    median = np.median(depth)
    constant = results["references"]["constant"]
    assert constant["abs_rel"] == pytest.approx(np.mean(np.abs(median - depth) / depth))
    assert constant["delta1"] == pytest.approx(100 * np.mean(np.maximum(median / depth, depth / median) < 1.25))
    assert math.isnan(constant["spearman"]) and constant["pixels"] == 25 * 44  # the 5 top rows are unknown
    assert results["scored"]["tiny"] == pytest.approx(score_zero_shot(load_predictor(heads_run), real, 64), nan_ok=True)
    # A re-run reuses the finished runs (no retraining: the training time is unchanged).
    seconds = results["arms"]["adapted"]["per_seed"][0]["train_seconds"]
    assert bench_zero_shot.main(argv) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["arms"]["adapted"]["per_seed"][0]["train_seconds"] == seconds
    assert again["arms"] == results["arms"]


def test_scoring_a_run_without_heads_is_a_one_line_error(
    analytic_shards, simclr_run, fake_middlebury, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(bench_zero_shot, "ARMS", {})  # score only
    with pytest.raises(SystemExit) as exc:
        bench_zero_shot.main(
            [
                "--shards",
                str(analytic_shards),
                "--out",
                str(tmp_path),
                "--root",
                str(fake_middlebury),
                "--score",
                f"simclr={simclr_run}",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and "'simclr'" in err[-1]
