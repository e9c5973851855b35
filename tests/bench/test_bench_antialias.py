"""bench/bench_antialias.py: the boundary steps it reports are those of the boundary pixels, and a
tiny run prints every method's figures (MSAA's difference from itself is 0, the others' is not)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from bench_antialias import boundary_steps, main


def test_steps_are_taken_between_boundary_pixels_only():
    instance = np.zeros((1, 2, 4), np.uint16)
    instance[:, :, 2:] = 1
    rgb = np.zeros((1, 2, 4, 3), np.uint8)
    rgb[:, :, 2:] = 90
    rgb[:, :, 3] = 255  # off the boundary: not measured
    assert sorted(boundary_steps(rgb, instance).tolist()) == [0.0, 0.0, 90.0, 90.0]


@pytest.mark.gl
def test_a_tiny_run_prints_every_method(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_antialias.py", "--scenes", "1", "--size", "24"])
    main()
    out = json.loads(capsys.readouterr().out)
    assert out["views"] == 2 and out["size"] == 24
    assert out["msaa"]["abs_diff_from_msaa_at_boundaries"] == 0.0
    for method in ("edges", "none"):  # each method renders its own way, not the default's
        assert out[method]["abs_diff_from_msaa_at_boundaries"] > 0.0, method
    assert set(out) >= {"msaa", "edges", "none"}
