"""The trainer over render folders with provenance: two seeds train together, the same scenes
given twice are refused (exit 2, one line), 1,000 shards train under ``ulimit -n 64``, and the
resume fingerprints cover nested layouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers.provenance_shards import provenance_render, tiny_folder
from helpers.train_overrides import tiny_overrides

from synthssl.train.cli import main
from synthssl.train.guards import shard_fingerprints

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "train" / "configs" / "synthetic_contrast.yaml")


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("renders")
    return (
        provenance_render(base / "seed1", num_scenes=8, shard_size=4, seed=1),
        provenance_render(base / "seed2", num_scenes=8, shard_size=4, seed=2, per_folder=1),
    )


def test_two_render_folders_with_different_seeds_train_together(two_seeds, photo_dir, tmp_path):
    a, b = two_seeds
    out = tmp_path / "run"
    code = main([CONFIG, *tiny_overrides(a, photo_dir, out, **{"data.shards": f"[{a},{b}]", "train.steps": 2})])
    assert code == 0 and _steps(out) == [1, 2]
    assert len(shard_fingerprints([a, b])) == 4  # nested shards of b included


def test_the_same_scenes_given_twice_are_refused(two_seeds, photo_dir, tmp_path, capsys):
    a, _ = two_seeds
    code = main([CONFIG, *tiny_overrides(a, photo_dir, tmp_path / "run", **{"data.shards": f"[{a},{a}]"})])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and any("the same scenes given twice" in line and str(a) in line for line in err), err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_training_on_1000_shards_under_ulimit_64(photo_dir, tmp_path):
    shards, _ = tiny_folder(tmp_path / "many", 1000, 32, per_folder=250)
    overrides = tiny_overrides(shards, photo_dir, tmp_path / "run", **{"train.steps": 2, "data.workers": 2})
    code = f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        from synthssl.train.cli import main
        sys.exit(main([{CONFIG!r}, *{overrides!r}]))
    """
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert _steps(tmp_path / "run") == [1, 2]
