"""Procedural and photo textures: uint8 RGB images [S, S, 3] drawn from a NumPy Generator.

Kinds: ``plain`` (None: base colour only), ``noise`` (multi-octave value noise
between two colours), ``stripes`` (random angle/period/duty), ``checker`` (random
cell size, rotated), ``gradient`` (linear, random direction), ``photo`` (random crop
of a usable image of a folder, `synthssl.render.photos`, decoded once per photo set,
`synthssl.render.photo_cache`). Textures tile (sampled with wrap-around UVs).
"""

from __future__ import annotations

import cv2
import numpy as np

from .photo_cache import open_photo_set


def random_color(rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour in [0, 1]^3 (HSV with full hue range, varied saturation/value)."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0.15, 1.0), rng.uniform(0.25, 1.0)
    hsv = np.array([[[h * 179, s * 255, v * 255]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64) / 255.0


def _two_tone(mask: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    img = c0[None, None] * (1 - mask[..., None]) + c1[None, None] * mask[..., None]
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size
    return x, y


def noise_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    acc = np.zeros((size, size))
    amp, total = 1.0, 0.0
    for cells in (4, 8, 16):
        grid = rng.uniform(0, 1, (cells, cells)).astype(np.float32)
        tiled = np.tile(grid, (3, 3))  # upsample a 3x3 tiling and keep the centre: the result tiles
        up = cv2.resize(tiled, (3 * size, 3 * size), interpolation=cv2.INTER_CUBIC)[size : 2 * size, size : 2 * size]
        acc += amp * up
        total += amp
        amp *= 0.5
    return _two_tone(np.clip(acc / total, 0, 1), random_color(rng), random_color(rng))


def stripes_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _coords(size)
    k = rng.integers(2, 9, 2)  # integer frequencies keep the texture tileable
    phase = (k[0] * x + (k[1] * y if rng.uniform() < 0.5 else 0.0)) % 1.0
    return _two_tone((phase < rng.uniform(0.3, 0.7)).astype(np.float64), random_color(rng), random_color(rng))


def checker_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _coords(size)
    n = int(rng.integers(2, 9))
    mask = ((np.floor(x * n) + np.floor(y * n)) % 2).astype(np.float64)
    return _two_tone(mask, random_color(rng), random_color(rng))


def gradient_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    x, y = _coords(size)
    kx, ky = [(1, 0), (0, 1), (1, 1), (1, -1), (2, 1), (1, 2)][int(rng.integers(6))]
    phase = rng.uniform(0, 2 * np.pi)
    t = 0.5 - 0.5 * np.cos(2 * np.pi * (kx * x + ky * y) + phase)  # integer frequencies: tiles
    return _two_tone(t, random_color(rng), random_color(rng))


#: Photos are kept at most this many times the texture side (a crop of 30-100 % of the photo is
#: shrunk to the texture).
PHOTO_SIDE_PER_TEXTURE = 4


def photo_texture(rng: np.random.Generator, size: int, folder: str) -> np.ndarray:
    """A random square crop of a random usable photo of ``folder`` (`synthssl.render.photos`), resized
    to ``size``; the photos come decoded from the folder's photo set (`synthssl.render.photo_cache`)."""
    photos = open_photo_set(folder, PHOTO_SIDE_PER_TEXTURE * size)
    if not len(photos):
        raise ValueError(f"appearance.photo_dir: none of the image files under {folder} can be decoded")
    img = photos.pick(int(rng.integers(len(photos))))
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(0.3, 1.0))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return cv2.resize(
        np.ascontiguousarray(img[y0 : y0 + side, x0 : x0 + side]), (size, size), interpolation=cv2.INTER_AREA
    )


def make_texture(kind: str, rng: np.random.Generator, size: int, photo_dir: str | None = None) -> np.ndarray | None:
    """Texture image uint8 [size, size, 3] of ``kind``; None for 'plain'."""
    if kind == "plain":
        return None
    if kind == "photo":
        if photo_dir is None:
            raise ValueError("appearance.photo_dir: required for photo textures")
        return photo_texture(rng, size, photo_dir)
    makers = {
        "noise": noise_texture,
        "stripes": stripes_texture,
        "checker": checker_texture,
        "gradient": gradient_texture,
    }
    if kind not in makers:
        raise ValueError(f"appearance.texture_weights: unknown texture kind {kind!r}")
    return makers[kind](rng, size)


__all__ = [
    "make_texture",
    "random_color",
    "noise_texture",
    "stripes_texture",
    "checker_texture",
    "gradient_texture",
    "photo_texture",
]
