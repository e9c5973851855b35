"""Fixtures for the predict tests: tiny trained runs (with and without heads) and odd images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.train_overrides import tiny_overrides

from synthssl.train.eval import middlebury


def _train(shards: Path, out: Path, **extra) -> Path:
    from synthssl.train.config import load_config
    from synthssl.train.trainer import Trainer

    overrides = tiny_overrides(shards, Path("unused"), out, **{"train.steps": 2, "data.photos": "null", **extra})
    if extra.get("method.name", "synthetic_contrast") != "synthetic_contrast":  # keep only options it has
        overrides = [
            o for o in overrides if not o.startswith(("method.synthetic.decoder_width", "method.synthetic.disc_width"))
        ]
    Trainer(load_config(None, overrides)).run()
    return out


@pytest.fixture(scope="session")
def train_tiny():
    """``train_tiny(shards, out, **overrides)``: a 2-step 32 px run (no photos) into ``out``."""
    return _train


@pytest.fixture(scope="session")
def heads_run(analytic_shards, tmp_path_factory) -> Path:
    """A 2-step synthetic_contrast run (property heads on, adaptation off) at 32 px."""
    return _train(
        analytic_shards, tmp_path_factory.mktemp("heads_run") / "run", **{"method.synthetic.adversarial": "none"}
    )


@pytest.fixture(scope="session")
def simclr_run(analytic_shards, tmp_path_factory) -> Path:
    """A 2-step SimCLR run: a method without heads."""
    return _train(
        analytic_shards,
        tmp_path_factory.mktemp("simclr_run") / "run",
        **{"method.name": "simclr", "method.projection.hidden_dim": 64},
    )


def _smooth(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    base = rng.integers(0, 255, (h // 6 + 2, w // 6 + 2, c), dtype=np.uint8)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    return img if img.ndim == 3 else img[..., None]


@pytest.fixture(scope="session")
def odd_images(tmp_path_factory) -> Path:
    """odd.jpg 37x91 (h x w) RGB, sub/gray.png 50x40 grayscale, sub/rgba.png 45x45 with a
    transparent left half, wide.webp 20x70, and broken.png (not an image)."""
    d = tmp_path_factory.mktemp("odd_images")
    (d / "sub").mkdir()
    rng = np.random.default_rng(1)
    cv2.imwrite(str(d / "odd.jpg"), _smooth(rng, 37, 91, 3))
    cv2.imwrite(str(d / "sub" / "gray.png"), _smooth(rng, 50, 40, 1)[..., 0])
    rgba = np.concatenate([_smooth(rng, 45, 45, 3), np.full((45, 45, 1), 255, np.uint8)], axis=2)
    rgba[:, :22, 3] = 0
    cv2.imwrite(str(d / "sub" / "rgba.png"), rgba)
    cv2.imwrite(str(d / "wide.webp"), _smooth(rng, 20, 70, 3))
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n definitely not the rest of a PNG")
    return d


@pytest.fixture()
def fake_middlebury(tmp_path, monkeypatch):
    """A 30 x 44 stand-in with a ramp of disparities (and its checksums accepted)."""
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "motorcycle_left.png"), rng.integers(0, 255, (30, 44, 3), dtype=np.uint8))
    disp = np.tile(np.linspace(5.0, 50.0, 44, dtype=np.float32), (30, 1))
    disp[:5] = np.inf
    np.savez(tmp_path / "motorcycle_disp.npz", disp)
    monkeypatch.setattr(
        middlebury, "SHA256", {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in tmp_path.iterdir()}
    )
    return tmp_path


@pytest.fixture(scope="session")
def few_photos(tmp_path_factory) -> Path:
    """Four small real-photo stand-ins (jpg) for the adversarial adaptation."""
    d = tmp_path_factory.mktemp("few_photos")
    rng = np.random.default_rng(2)
    for i in range(4):
        cv2.imwrite(str(d / f"p{i}.jpg"), _smooth(rng, 64, 80, 3))
    return d
