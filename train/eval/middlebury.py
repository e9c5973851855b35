"""Real depth ground truth that works offline: the Middlebury 2014 "Motorcycle" pair.

Source: scikit-image ships a 4x down-sampled copy of the left/right views and the
left view's ground-truth disparity as package data (``skimage/data/motorcycle_*``,
the data of ``skimage.data.stereo_motorcycle``), identical in its PyPI wheel and in
the Debian package ``python3-skimage`` (bookworm 0.19.3-8). ``scripts/setup.sh``
unpacks the three files and the package's copyright file into
``/usr/share/synthssl/middlebury-motorcycle`` (`DEFAULT_ROOT`). The dataset is by
Scharstein, Hirschmüller, Kitajima, Krathwohl, Nesic, Wang and Westling (GCPR 2014);
see docs/eval.md for the licence.

Disparity -> depth with the calibration of the down-sampled images (scikit-image's
documentation of ``stereo_motorcycle``): ``Z = f * B / (d + doffs)``, f = 994.978 px,
B = 193.001 mm, doffs = 31.086 px, so `RealDepth.depth` is in millimetres. Pixels
without ground truth (NaN / inf disparity) are invalid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["RealDepth", "load_motorcycle", "disparity_to_depth", "DEFAULT_ROOT", "SHA256"]

DEFAULT_ROOT = Path("/usr/share/synthssl/middlebury-motorcycle")
FOCAL_PX, BASELINE_MM, DOFFS_PX = 994.978, 193.001, 31.086

#: SHA-256 of the files as shipped (scikit-image 0.19.3 to 0.26.0 carry the same bytes).
SHA256 = {
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "motorcycle_disp.npz": "2e49c8cebff3fa20359a0cc6880c82e1c03bbb106da81a177218281bc2f113d7",
}


@dataclass(frozen=True)
class RealDepth:
    """One real image with depth ground truth.

    rgb: uint8 [H, W, 3]; depth: float32 [H, W] (millimetres, 0 where unknown);
    valid: bool [H, W]; name: the dataset's name, for reports.
    """

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray


def disparity_to_depth(
    disp: np.ndarray, focal: float = FOCAL_PX, baseline: float = BASELINE_MM, doffs: float = DOFFS_PX
) -> tuple[np.ndarray, np.ndarray]:
    """disparity float [H, W] (px; NaN/inf = unknown) -> (depth float32 [H, W] in baseline units, valid)."""
    d = disp.astype(np.float64) + doffs
    valid = np.isfinite(d) & (d > 0)
    depth = np.where(valid, focal * baseline / np.where(valid, d, 1.0), 0.0)
    return depth.astype(np.float32), valid


def _check(path: Path, verify: bool) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"zero_shot_root: {path} is missing (bash scripts/setup.sh unpacks it)")
    if verify and hashlib.sha256(path.read_bytes()).hexdigest() != SHA256[path.name]:
        raise ValueError(f"zero_shot_root: {path} is not the file scikit-image ships (SHA-256 differs)")


def load_motorcycle(root: str | Path = DEFAULT_ROOT, verify: bool = True) -> RealDepth:
    """The left view of Middlebury 2014 Motorcycle (500 x 741) with depth from its disparity."""
    root = Path(root)
    left, disp_file = root / "motorcycle_left.png", root / "motorcycle_disp.npz"
    for f in (left, disp_file):
        _check(f, verify)
    bgr = cv2.imread(str(left), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"zero_shot_root: cannot decode {left}")
    with np.load(disp_file) as data:
        disp = np.asarray(data["arr_0"], dtype=np.float64)
    if disp.ndim == 3:
        disp = disp[..., 0]
    if disp.shape != bgr.shape[:2]:
        raise ValueError(f"zero_shot_root: disparity {disp.shape} and image {bgr.shape[:2]} differ in size")
    depth, valid = disparity_to_depth(disp)
    return RealDepth("middlebury2014-motorcycle", np.ascontiguousarray(bgr[..., ::-1]), depth, valid)
