"""Zero-shot depth metrics (known answers), disparity -> depth, and predict zero_shot=true."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthssl.train.cli import main as train_ssl
from synthssl.train.eval import middlebury
from synthssl.train.eval.middlebury import disparity_to_depth, load_motorcycle
from synthssl.train.eval.zero_shot import depth_zero_shot_metrics, median_scale


def test_a_scaled_copy_is_perfect_and_an_inverse_is_anti_correlated():
    gt = np.linspace(1.0, 9.0, 40, dtype=np.float32).reshape(5, 8)
    m = depth_zero_shot_metrics(3.7 * gt, gt)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-6) and m["delta1"] == 100.0
    assert m["spearman"] == pytest.approx(1.0) and m["scale"] == pytest.approx(1 / 3.7)
    assert depth_zero_shot_metrics(1.0 / gt, gt)["spearman"] == pytest.approx(-1.0)


def test_known_answer_after_median_scaling():
    gt = np.ones((1, 4))
    pred = np.array([[5.0, 5.0, 5.0, 10.0]])  # median 5 -> scaled [1, 1, 1, 2]
    m = depth_zero_shot_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx(0.25) and m["delta1"] == pytest.approx(75.0) and m["pixels"] == 4
    assert np.isnan(m["spearman"])  # constant ground truth: no ranking to compare


def test_spearman_and_masking():
    gt = np.array([[1.0, 2.0, 3.0, 4.0, np.nan, 0.0]])
    pred = np.array([[1.0, 3.0, 2.0, 4.0, 7.0, 7.0]])  # the last two pixels have no ground truth
    m = depth_zero_shot_metrics(pred, gt)
    assert m["pixels"] == 4 and m["spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15))
    valid = np.array([[True, True, True, False, True, True]])
    assert depth_zero_shot_metrics(pred, gt, valid)["pixels"] == 3
    assert median_scale(pred, gt) == pytest.approx(1.0)  # both medians are 2.5
    with pytest.raises(ValueError, match="shapes differ"):
        depth_zero_shot_metrics(pred[:, :3], gt)


def test_disparity_to_depth():
    disp = np.array([[10.0, np.inf, np.nan, -5.0]])
    depth, valid = disparity_to_depth(disp, focal=100.0, baseline=2.0, doffs=10.0)
    assert valid.tolist() == [[True, False, False, True]]
    assert depth[0, 0] == pytest.approx(100.0 * 2.0 / 20.0) and depth[0, 3] == pytest.approx(40.0)
    assert depth[0, 1] == 0 and depth[0, 2] == 0


def test_loader_checks_files(fake_middlebury, tmp_path):
    data = load_motorcycle(fake_middlebury)
    assert data.rgb.shape == (30, 44, 3) and data.valid.sum() == 25 * 44
    (fake_middlebury / "motorcycle_left.png").write_bytes(b"changed")
    with pytest.raises(ValueError, match="SHA-256"):
        load_motorcycle(fake_middlebury)
    with pytest.raises(FileNotFoundError, match="setup.sh"):
        load_motorcycle(tmp_path / "nowhere")


@pytest.mark.skipif(
    not (middlebury.DEFAULT_ROOT / "motorcycle_disp.npz").is_file(),
    reason="Middlebury data not unpacked (bash scripts/setup.sh)",
)
def test_real_motorcycle_ground_truth():
    data = load_motorcycle()
    assert data.rgb.shape == (500, 741, 3) and 0.9 < data.valid.mean() < 0.95
    d = data.depth[data.valid]
    assert 1500 < d.min() and d.max() < 6000  # millimetres: the scene is 2-5 m from the camera


def test_zero_shot_flag_prints_and_writes_json(heads_run, fake_middlebury, tmp_path, capsys):
    assert (
        train_ssl(
            [
                "predict",
                f"run={heads_run}",
                "zero_shot=true",
                f"zero_shot_root={fake_middlebury}",
                f"out={tmp_path}",
                "size=32",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == json.loads((tmp_path / "zero_shot.json").read_text())
    assert printed["pixels"] == 25 * 44 and printed["size"] == 32 and printed["dataset"].startswith("middlebury")
    assert 0 <= printed["delta1"] <= 100 and -1 <= printed["spearman"] <= 1
