"""Shared test fixtures and the ``gpu`` tier's skip. ``helpers.analytic_scene`` builds exact
scenes without a GL context."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``gpu`` when torch sees no CUDA device."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs CUDA (marked gpu): torch.cuda.is_available() is false")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _caches_in_the_run_folder(tmp_path_factory):
    """Renders cache decoded photo sets under ``$SYNTHSSL_CACHE_DIR`` (`synthssl.render.photo_cache`,
    else ~/.cache/synthssl). The tests' caches go to this run's temporary folder instead, so they
    leave with it and never pile up in the user's home (every run's photo folders are new)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("SYNTHSSL_CACHE_DIR", str(tmp_path_factory.mktemp("synthssl-cache")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run faster on one intra-op thread, and far faster on a busy machine
    (no OpenMP spin-waits); restored after each test. No-op for tests without torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def analytic_shards(tmp_path_factory) -> Path:
    """A directory of 3 shards (12 analytic scenes, 32x32, 2 views) with a manifest."""
    from helpers.analytic_scene import write_shards

    d = tmp_path_factory.mktemp("analytic_shards")
    write_shards(d, num_scenes=12, shard_size=4, size=32)
    return d
