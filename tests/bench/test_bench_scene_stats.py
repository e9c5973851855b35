"""bench/bench_scene_stats.py: the difference of means and its standard error, and a tiny run of
both settings (the same objects per scene: placement and anti-aliasing draw after the objects)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from bench_scene_stats import main, mean_difference


def test_mean_difference_and_its_standard_error():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    # var(a) = 1, var(b) = 4 (ddof 1): SE = sqrt(1/3 + 4/3)
    assert mean_difference(a, b) == {"difference": 2.0, "standard_error": round(float(np.sqrt(5 / 3)), 4)}


@pytest.mark.gl
def test_a_tiny_run_compares_the_two_settings(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_scene_stats.py", "--scenes", "3", "--size", "24"])
    main()
    out = json.loads(capsys.readouterr().out)
    assert out["against"]["overrides"] == ["physics.simulate=true", "appearance.antialias_by=msaa"]
    assert out["current"]["objects_per_scene"] == out["against"]["objects_per_scene"]
    assert abs(sum(out["current"]["category_pixel_share"].values()) - 1.0) < 1e-3
