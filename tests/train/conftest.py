"""Fixtures for trainer tests: tiny analytic shards (exact geometry) and a photo folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.analytic_scene import write_shards
from helpers.photo_folder import write_photo_folder


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory) -> Path:
    """24 analytic scenes (spheres on a floor), 48x48 px, 2 views, in 3 shards."""
    d = tmp_path_factory.mktemp("shards")
    write_shards(d, num_scenes=24, shard_size=8, size=48)
    return d


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """8 random-texture photos in nested folders (jpg/png) plus one corrupt file."""
    return write_photo_folder(tmp_path_factory.mktemp("photos"), nested=True, corrupt=True)
