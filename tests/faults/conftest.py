"""Fixtures of the fault suite (its helpers live in tests/helpers/faults.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.analytic_scene import write_shards


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> Path:
    """12 analytic scenes (32 px, 2 views) in 3 shards, with a manifest."""
    return Path(write_shards(tmp_path_factory.mktemp("fault_shards"), num_scenes=12, shard_size=4, size=32)[0]).parent
