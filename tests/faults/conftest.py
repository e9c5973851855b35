"""Fixtures of the fault suite (its helpers live in fault_helpers.py: a plain ``conftest`` import
would be ambiguous next to the other test folders' conftest modules)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> Path:
    """12 analytic scenes (32 px, 2 views) in 3 shards, with a manifest."""
    from analytic_scene import write_shards

    d = tmp_path_factory.mktemp("fault_shards")
    write_shards(d, num_scenes=12, shard_size=4, size=32)
    return d
