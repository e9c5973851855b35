"""What a render prints and draws besides the shards: no pybullet banner, a labelled preview sheet."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from synthssl.render.preview import COLUMNS, column_header


def test_importing_physics_prints_no_pybullet_banner():
    if importlib.util.find_spec("pybullet") is None:
        pytest.skip("pybullet is not installed (wheels for CPython 3.11 only): there is no banner to hide")
    code = "import synthssl.render.physics as p; assert p.physics_available()"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert (done.stdout, done.stderr) == ("", "")


def test_preview_header_names_each_column_over_its_tiles():
    header = column_header(tile_width=32, separator=2, scale=2)
    column = (32 + 2) * 2
    assert header.dtype == np.uint8 and header.shape[1] == column * len(COLUMNS) - 2 * 2
    ink = (header < 128).any(axis=(0, 2))  # columns of pixels with dark text in them
    for k in range(len(COLUMNS)):
        assert ink[k * column : (k + 1) * column - 4].any(), COLUMNS[k]  # each tile's span holds its name
        assert not ink[(k + 1) * column - 4 : (k + 1) * column].any()  # the separators stay blank
