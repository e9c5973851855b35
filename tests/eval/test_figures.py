"""Plotting helpers: ticks cover the data, PNGs round-trip, colour conventions hold."""

import cv2
import numpy as np
import pytest
import torch

from synthssl.train.eval.drawing import line_chart, nice_ticks, write_png
from synthssl.train.eval.figures import normals_to_rgb, read_metrics_jsonl, training_curves_figure
from synthssl.train.eval.pca import pca_project


@pytest.mark.parametrize("lo,hi", [(0, 1), (0.013, 0.017), (-3, 250), (5, 5), (1e-6, 3e-6)])
def test_nice_ticks_cover_range(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 12
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])


def test_write_png_round_trip(tmp_path):
    img = line_chart({"a": ([0, 1, 2], [3.0, 1.0, 2.0]), "b": ([0, 2], [0.5, 0.7])}, "title")
    path = write_png(tmp_path / "sub" / "x.png", img)
    back = cv2.imread(str(path))[..., ::-1]
    np.testing.assert_array_equal(back, img)
    assert not list((tmp_path / "sub").glob("*.tmp"))


def test_normals_colour_convention():
    n = np.array([[[0, 0, -1], [0, -1, 0], [0, 0, 0]]], np.float32)  # facing camera, facing up, none
    rgb = normals_to_rgb(n)
    assert rgb[0, 0].tolist() == [127, 127, 255]
    assert rgb[0, 1].tolist() == [127, 255, 127]
    assert rgb[0, 2].tolist() == [0, 0, 0]


def test_training_curves_from_jsonl(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1, "loss": 2.0, "tag": "x"}\n\n{"step": 2, "loss": 1.0, "depth": 0.3}\n')
    records = read_metrics_jsonl(p)
    img = training_curves_figure(records, "run")
    assert img.shape[1] == 3 * 420  # two numeric keys -> one row of three panels (one blank)
    p.write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2"):
        read_metrics_jsonl(p)


def test_pca_recovers_main_axis_with_fixed_sign():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g) * torch.tensor([10.0, 1.0, 0.1])
    p1 = pca_project(x, 2)
    p2 = pca_project(-x, 2)
    assert torch.corrcoef(torch.stack([p1[:, 0], x[:, 0].double()]))[0, 1] > 0.99
    assert torch.allclose(p1, -p2)  # the data flipped -> projections flip, components keep their sign
