"""Zero-shot depth on ViSP's castel frames: predict zero_shot_data=castel and bench_zero_shot --data castel."""

from __future__ import annotations

import json
import shutil

import bench_zero_shot
import numpy as np
import pytest
from helpers.castel_tree import HEIGHT, WIDTH, write_castel_tree

from synthssl.train.cli import main as train_ssl
from synthssl.train.eval.castel import FRAMES, load_castel
from synthssl.train.eval.zero_shot import depth_zero_shot_metrics, row_prior_depth
from synthssl.train.predict.model import load_predictor
from synthssl.train.predict.zero_shot import mean_scores, score_zero_shot, score_zero_shot_set


@pytest.fixture()
def castel_tree(tmp_path):
    """All 30 frames, as the package has them (12 x 16 each)."""
    return write_castel_tree(tmp_path / "castel", frames=FRAMES)


def test_a_set_reports_the_mean_over_its_images(heads_run, castel_tree):
    frames = load_castel(castel_tree, frames=2)
    predictor = load_predictor(heads_run)
    got = score_zero_shot_set(predictor, "castel", frames, 32)
    per_image = [score_zero_shot(predictor, f, 32) for f in frames]
    assert got["per_image"] == per_image and got["images"] == 2 and got["dataset"] == "castel"
    assert got["pixels"] == 2 * HEIGHT * WIDTH
    for k in ("abs_rel", "delta1"):
        assert got[k] == pytest.approx((per_image[0][k] + per_image[1][k]) / 2, rel=1e-12)
    # one image: exactly score_zero_shot's dict
    assert score_zero_shot_set(predictor, "castel", frames[:1], 32) == per_image[0]


def test_mean_scores_skips_undefined_spearman():
    scores = [
        {"abs_rel": 0.1, "delta1": 90.0, "spearman": float("nan"), "pixels": 3},
        {"abs_rel": 0.3, "delta1": 70.0, "spearman": 0.5, "pixels": 4},
    ]
    assert mean_scores(scores) == {"abs_rel": 0.2, "delta1": 80.0, "spearman": 0.5, "pixels": 7}
    assert np.isnan(mean_scores(scores[:1])["spearman"])


def test_predict_zero_shot_castel_prints_and_writes_json(heads_run, castel_tree, tmp_path, capsys):
    argv = ["predict", f"run={heads_run}", "zero_shot=true", "zero_shot_data=castel", f"out={tmp_path / 'p'}"]
    assert train_ssl([*argv, f"zero_shot_root={castel_tree}", "size=32"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == json.loads((tmp_path / "p" / "zero_shot.json").read_text())
    assert printed["dataset"] == "castel" and printed["images"] == 30 and printed["pixels"] == 30 * HEIGHT * WIDTH
    assert [r["dataset"] for r in printed["per_image"]] == [f"visp-castel/{k:04d}" for k in range(30)]


def test_predict_zero_shot_mistakes_are_one_line(heads_run, tmp_path, capsys):
    base = ["predict", f"run={heads_run}", "zero_shot=true", f"out={tmp_path / 'p'}"]
    assert train_ssl([*base, "zero_shot_data=nyu"]) == 2
    assert capsys.readouterr().err.strip() == (
        "train-ssl predict: error: zero_shot_data: expected middlebury or castel"
    )
    assert train_ssl([*base, "zero_shot_data=castel", f"zero_shot_root={tmp_path / 'none'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "\n" not in err
        and "bash scripts/setup.sh (or apt-get install visp-images-data)" in err
        and str(tmp_path / "none") in err
    )


def test_bench_zero_shot_data_castel(analytic_shards, heads_run, castel_tree, tmp_path, capsys, monkeypatch):
    """The arms' training replaced by a copy of a trained run: both arms and the references are
    scored on the castel stand-in, as means over its 30 frames."""

    def trained(args, arm, seed, run):
        shutil.copytree(heads_run, run)
        return 1.0

    monkeypatch.setattr(bench_zero_shot, "train", trained)
    out = tmp_path / "bench"
    argv = ["--shards", str(analytic_shards), "--out", str(out), "--data", "castel", "--root", str(castel_tree)]
    assert bench_zero_shot.main([*argv, "--size", "32"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert results["dataset"] == "castel"
    frames = load_castel(castel_tree)
    direct = score_zero_shot_set(load_predictor(heads_run), "castel", frames, 32)
    for arm in ("adapted", "no_adaptation"):
        seed0 = results["arms"][arm]["per_seed"][0]
        assert seed0["images"] == 30 and seed0["abs_rel"] == pytest.approx(direct["abs_rel"], rel=1e-6)
    row_prior = mean_scores([depth_zero_shot_metrics(row_prior_depth(HEIGHT, WIDTH), f.depth, f.valid) for f in frames])
    assert results["references"]["row_prior"] == pytest.approx(row_prior, rel=1e-12)
