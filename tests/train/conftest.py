"""Fixtures for trainer tests: tiny analytic shards (exact geometry) and a photo folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.analytic_scene import write_shards


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory) -> Path:
    """24 analytic scenes (spheres on a floor), 48x48 px, 2 views, in 3 shards."""
    d = tmp_path_factory.mktemp("shards")
    write_shards(d, num_scenes=24, shard_size=8, size=48)
    return d


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """8 random-texture photos in nested folders (jpg/png) plus one corrupt file."""
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(8):
        sub = d / f"set{i % 2}"
        sub.mkdir(exist_ok=True)
        h, w = int(rng.integers(60, 120)), int(rng.integers(60, 120))
        base = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(sub / f"photo{i}.{'jpg' if i % 2 else 'png'}"), img)
    (d / "set0" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return d
