"""Shared fixtures: tiny rendered datasets (rendered once per test session)."""

from __future__ import annotations

import numpy as np
import pytest

from synthssl.dataset.reader import ShardCollection
from synthssl.render.config import config_from_dict
from synthssl.render.pipeline import render_dataset


def tiny_config(out, **overrides):
    """A 48-64 px, few-scene config; ``overrides`` are nested dicts merged at the top level."""
    base = {"out": str(out), "scenes": 4, "size": 64, "views": 2, "seed": 7, "shard_size": 2, "backend": "auto"}
    base.update(overrides)
    return config_from_dict(base)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """(config, ShardCollection, list of scene dicts) of 4 scenes at 64 px, physics on, walls likely."""
    out = tmp_path_factory.mktemp("rendered")
    cfg = tiny_config(out, appearance={"walls_probability": 0.7})
    render_dataset(cfg, progress=False)
    coll = ShardCollection([str(out)])
    return cfg, coll, [coll[i] for i in range(len(coll))]


@pytest.fixture(scope="session")
def make_config():
    """The tiny_config factory, for tests that render their own runs."""
    return tiny_config


@pytest.fixture
def rng():
    return np.random.default_rng(0)
