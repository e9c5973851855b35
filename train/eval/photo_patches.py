"""Photo patches: a real-photograph patch classification task that works offline.

The source is 12 photographs shipped by the Debian package ``lomiri-wallpapers-16.04``
(version 20.04.0-2; CC-BY-4.0, CC-BY-SA-4.0 and CC0-1.0, see :data:`PHOTO_PATCHES_SOURCES`),
unpacked by ``scripts/setup.sh`` into ``/usr/share/synthssl/photo-patches`` (not installed
into ``/usr/share/backgrounds``, so that no photo folder used for training ever holds them).
These are not the ``mate-backgrounds`` photos (``/usr/share/backgrounds/mate``) that
training uses. The task is "which photograph
does this 64 x 64 patch come from": 12 classes, 300 train and 100 test patches per class.

The task is built the same way every time, for a given ``seed``. For each photograph
(class ``c``):

1. decode to RGB and resize (area interpolation) so that the shorter side is
   ``short_side`` = 768 pixels;
2. cut the largest centred grid of ``block`` x ``block`` = 128 px blocks that fits (42 to 60
   blocks per photo); a permutation from ``numpy.random.default_rng([seed, c])`` sends
   ``round(test_fraction * blocks)`` = 25 % of the blocks to the test split and the rest
   to the train split;
3. every ``patch`` x ``patch`` window that lies entirely inside one block of a split is
   a candidate. Windows whose grayscale standard deviation is under ``min_std`` = 8
   (0-255 units: flat sky, blur) are dropped. The first ``per_class`` remaining
   candidates in a random order (same generator) are kept. No two kept windows are the
   same, and no train window shares a pixel with a test window, because blocks do not
   overlap.

Patches of one split do overlap each other (about 8 per block).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from synthssl.train.eval.labeled_images import LabeledImages

__all__ = [
    "DEFAULT_PHOTO_PATCHES_ROOT",
    "PHOTO_PATCHES_PACKAGE",
    "PHOTO_PATCHES_SOURCES",
    "PatchLayout",
    "PatchTaskConfig",
    "SourcePhoto",
    "build_patch_task",
    "layout_patches",
    "load_photo_patches",
    "patch_std",
    "resize_short_side",
]

#: Where ``scripts/setup.sh`` unpacks the package's photographs (its /usr/share/backgrounds/*.jpg).
DEFAULT_PHOTO_PATCHES_ROOT = Path("/usr/share/synthssl/photo-patches")
#: The Debian package (and the version whose files the checksums below are for).
PHOTO_PATCHES_PACKAGE = "lomiri-wallpapers-16.04"
PHOTO_PATCHES_PACKAGE_VERSION = "20.04.0-2"


@dataclass(frozen=True)
class SourcePhoto:
    """One source photograph: file name under the root, class name, SHA-256 of the file,
    author and licence (from the package's ``/usr/share/doc/<package>/copyright``)."""

    file: str
    name: str
    sha256: str
    author: str
    licence: str


#: The 12 photographs, in class-index order. Left out from the same package: the drawing
#: ``umang_by_Abhishek_Mudgal.jpg``, and ``free_by_Peter_Nerlich.jpg`` and
#: ``greentock_by_Peter_Nerlich.jpg``, which are mostly flat grey (they look alike).
PHOTO_PATCHES_SOURCES: tuple[SourcePhoto, ...] = (
    SourcePhoto(
        "Bridge_by_Sander_Klootwijk.jpg",
        "bridge",
        "bd86b081f9975e2b83527f71e49b9271a8ab40885428395969d9f7d834d7f050",
        "Sander Klootwijk",
        "CC-BY-SA-4.0",
    ),
    SourcePhoto(
        "Dragonfly_by_Bolly.jpg",
        "dragonfly",
        "af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3",
        "Bolly",
        "CC-BY-SA-4.0",
    ),
    SourcePhoto(
        "Picture_0B_by_freespace.jpg",
        "fig",
        "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad",
        "Trevor 'Freespace'",
        "CC-BY-4.0",
    ),
    SourcePhoto(
        "Picture_1A_by_freespace.jpg",
        "brushes",
        "89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b",
        "Trevor 'Freespace'",
        "CC-BY-4.0",
    ),
    SourcePhoto(
        "Wine_by_Jakkub_Mede.jpg",
        "wine",
        "d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74",
        "Jakub Mede",
        "CC-BY-4.0",
    ),
    SourcePhoto(
        "aitzgorri_by_Aitzol_Berasategi.jpg",
        "aitzgorri",
        "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36",
        "Aitzol Berasategi",
        "CC-BY-4.0",
    ),
    SourcePhoto(
        "analogpattern_by_Peter_Nerlich.jpg",
        "analog pattern",
        "15372488a192b2be2eafc67bd3ed31cbfca19abe3929e925607fcbc9cb4d4202",
        "Peter Nerlich",
        "CC-BY-SA-4.0",
    ),
    SourcePhoto(
        "friends_by_Aitzol_Berasategi.jpg",
        "friends",
        "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d",
        "Aitzol Berasategi",
        "CC-BY-4.0",
    ),
    SourcePhoto(
        "life_by_Aitzol_Berasategi.jpg",
        "life",
        "4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05",
        "Aitzol Berasategi",
        "CC-BY-4.0",
    ),
    SourcePhoto(
        "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "picos de europa",
        "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a",
        "Aitzol Berasategi",
        "CC-BY-4.0",
    ),
    SourcePhoto(
        "seeding_by_Clements_Engelhardt.jpg",
        "seeding",
        "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f",
        "Clemens Engelhardt",
        "CC0-1.0",
    ),
    SourcePhoto(
        "sunset_by_Aitzol_Berasategi.jpg",
        "sunset",
        "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18",
        "Aitzol Berasategi",
        "CC-BY-4.0",
    ),
)


@dataclass(frozen=True)
class PatchTaskConfig:
    """How patches are cut (all sizes in pixels of the resized photograph).

    Attributes:
        short_side: every photograph is resized so that its shorter side has this length.
        block: side of the square blocks; each block is all-train or all-test.
        patch: side of the square patches (the images of the task); at most ``block``.
        test_fraction: share of the blocks of each photograph that go to the test split.
        train_per_class / test_per_class: patches kept per photograph and split.
        min_std: candidates whose grayscale standard deviation (0-255) is below this are dropped.
    """

    short_side: int = 768
    block: int = 128
    patch: int = 64
    test_fraction: float = 0.25
    train_per_class: int = 300
    test_per_class: int = 100
    min_std: float = 8.0

    def __post_init__(self) -> None:
        if not 0 < self.patch <= self.block <= self.short_side:
            raise ValueError(
                f"need 0 < patch <= block <= short_side, got {self.patch}, {self.block}, {self.short_side}"
            )
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if self.train_per_class < 1 or self.test_per_class < 1:
            raise ValueError("train_per_class and test_per_class must be >= 1")


@dataclass(frozen=True)
class PatchLayout:
    """Where the patches of one photograph are, in pixels of the resized photograph.

    Attributes:
        blocks: int64 [K, 2], top-left (y, x) of each block of the grid.
        test_block: bool [K], True for the blocks of the test split.
        train: int64 [train_per_class, 2], top-left (y, x) of each train patch.
        test: int64 [test_per_class, 2], top-left (y, x) of each test patch.
    """

    blocks: np.ndarray
    test_block: np.ndarray
    train: np.ndarray
    test: np.ndarray


def resize_short_side(rgb: np.ndarray, short_side: int) -> np.ndarray:
    """Resize uint8 [H, W, 3] so that min(H, W) == ``short_side`` (aspect ratio kept; area
    interpolation when shrinking, bilinear when enlarging)."""
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))  # cv2 wants (w, h)
    if size == (w, h):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def patch_std(gray: np.ndarray, origins: np.ndarray, patch: int) -> np.ndarray:
    """Standard deviation (float64 [N]) of the ``patch`` x ``patch`` windows of ``gray``
    (uint8 [H, W]) with top-left corners ``origins`` (int [N, 2], (y, x)), from integral
    images."""
    s, sq = cv2.integral2(gray, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    y, x = origins[:, 0], origins[:, 1]

    def window(table: np.ndarray) -> np.ndarray:
        return table[y + patch, x + patch] - table[y, x + patch] - table[y + patch, x] + table[y, x]

    n = float(patch * patch)
    mean = window(s) / n
    return np.sqrt(np.maximum(window(sq) / n - mean * mean, 0.0))


def _pick(
    gray: np.ndarray, blocks: np.ndarray, config: PatchTaskConfig, count: int, rng: np.random.Generator, what: str
) -> np.ndarray:
    """``count`` distinct textured patch corners inside ``blocks`` (int64 [count, 2])."""
    span = config.block - config.patch + 1  # corner positions per block side
    ids = rng.permutation(len(blocks) * span * span)
    block, rest = np.divmod(ids, span * span)
    dy, dx = np.divmod(rest, span)
    origins = blocks[block] + np.stack([dy, dx], axis=1)
    keep = origins[patch_std(gray, origins, config.patch) >= config.min_std]
    if len(keep) < count:
        raise ValueError(
            f"{what}: only {len(keep)} patches with grayscale std >= {config.min_std} "
            f"in {len(blocks)} blocks, {count} needed"
        )
    return keep[:count].astype(np.int64)


def layout_patches(
    rgb: np.ndarray, config: PatchTaskConfig, rng: np.random.Generator, what: str = "photo"
) -> PatchLayout:
    """Blocks, their split and the patch corners for one resized photograph
    (uint8 [H, W, 3] with min(H, W) == ``config.short_side``)."""
    h, w = rgb.shape[:2]
    rows, cols = h // config.block, w // config.block
    if rows * cols < 2:
        raise ValueError(f"{what}: {h}x{w} px holds fewer than 2 blocks of {config.block} px")
    y0, x0 = (h - rows * config.block) // 2, (w - cols * config.block) // 2
    grid_y, grid_x = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    blocks = np.stack([y0 + grid_y.ravel() * config.block, x0 + grid_x.ravel() * config.block], axis=1)
    n_test = min(rows * cols - 1, max(1, round(config.test_fraction * rows * cols)))
    test_block = np.zeros(rows * cols, dtype=bool)
    test_block[rng.permutation(rows * cols)[:n_test]] = True
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    train = _pick(gray, blocks[~test_block], config, config.train_per_class, rng, f"{what} (train)")
    test = _pick(gray, blocks[test_block], config, config.test_per_class, rng, f"{what} (test)")
    return PatchLayout(blocks.astype(np.int64), test_block, train, test)


def _cut(rgb: np.ndarray, origins: np.ndarray, patch: int) -> np.ndarray:
    return np.stack([rgb[y : y + patch, x : x + patch] for y, x in origins.tolist()])


def build_patch_task(
    photos: Sequence[np.ndarray],
    class_names: Sequence[str],
    config: PatchTaskConfig = PatchTaskConfig(),
    seed: int = 0,
    name: str = "photo-patches",
) -> tuple[LabeledImages, LabeledImages]:
    """(train, test) patch sets from RGB photographs (uint8 [H_c, W_c, 3], one per class).

    Returns uint8 [C * per_class, patch, patch, 3] images with int64 labels, grouped by
    class (all patches of class 0 first). Photo ``c`` uses the generator
    ``numpy.random.default_rng([seed, c])``, so one class's patches do not depend on the others.
    """
    if len(photos) != len(class_names) or len(photos) < 2:
        raise ValueError(
            f"need one photo per class and >= 2 classes, got {len(photos)} photos, {len(class_names)} names"
        )
    out: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for c, (photo, cname) in enumerate(zip(photos, class_names)):
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise ValueError(f"photo {cname!r}: expected uint8 [H, W, 3], got {photo.dtype} {photo.shape}")
        rgb = resize_short_side(photo, config.short_side)
        layout = layout_patches(rgb, config, np.random.default_rng([seed, c]), what=f"photo {cname!r}")
        out["train"].append(_cut(rgb, layout.train, config.patch))
        out["test"].append(_cut(rgb, layout.test, config.patch))
    per = {"train": config.train_per_class, "test": config.test_per_class}
    return tuple(  # type: ignore[return-value]
        LabeledImages(
            images=np.ascontiguousarray(np.concatenate(out[split])),
            labels=np.repeat(np.arange(len(photos), dtype=np.int64), per[split]),
            class_names=tuple(class_names),
            name=f"{name}/{split}",
        )
        for split in ("train", "test")
    )


def _read_photo(root: Path, source: SourcePhoto, verify: bool) -> np.ndarray:
    path = root / source.file
    if not path.is_file():
        raise FileNotFoundError(
            f"photo-patches: {path} not found; run scripts/setup.sh (it unpacks the Debian package "
            f"{PHOTO_PATCHES_PACKAGE} into {DEFAULT_PHOTO_PATCHES_ROOT}), or `apt-get install "
            f"{PHOTO_PATCHES_PACKAGE}` and give photo-patches:/usr/share/backgrounds"
        )
    data = path.read_bytes()
    if verify and hashlib.sha256(data).hexdigest() != source.sha256:
        raise ValueError(
            f"photo-patches: {path} is not the file of {PHOTO_PATCHES_PACKAGE} "
            f"{PHOTO_PATCHES_PACKAGE_VERSION} (SHA-256 differs), so the task would not be "
            f"comparable; pass verify=False to use it anyway"
        )
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"photo-patches: cannot decode {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def load_photo_patches(
    root: str | Path | None = None, seed: int = 0, config: PatchTaskConfig = PatchTaskConfig(), verify: bool = True
) -> tuple[LabeledImages, LabeledImages]:
    """The photo-patches task: (train, test) with uint8 RGB [12 * 300, 64, 64, 3] and
    [12 * 100, 64, 64, 3] images and int64 labels in [0, 12) (default ``config``).

    ``root`` holds the photographs (default /usr/share/synthssl/photo-patches). With ``verify``,
    each file must match the SHA-256 it has in ``lomiri-wallpapers-16.04`` 20.04.0-2.
    The name is "photo-patches", plus ``-seedN`` for seed N != 0 and a hash of
    ``config`` when it is not the default, so feature caches keep tasks apart. Takes about 2-4 s, mostly JPEG decoding.
    """
    root = Path(root) if root is not None else DEFAULT_PHOTO_PATCHES_ROOT
    photos = [_read_photo(root, s, verify) for s in PHOTO_PATCHES_SOURCES]
    name = "photo-patches" if seed == 0 else f"photo-patches-seed{seed}"
    if config != PatchTaskConfig():
        name += f"-{hashlib.sha256(repr(config).encode()).hexdigest()[:8]}"
    return build_patch_task(photos, [s.name for s in PHOTO_PATCHES_SOURCES], config, seed, name)
