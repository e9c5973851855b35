"""A small stand-in for ViSP's ``mbt-depth/castel`` folder, in the package's own file formats."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

#: intrinsics of both stand-in cameras (px = py = 20, principal point at pixel (row 6, column 8))
FOCAL, U0, V0 = 20.0, 8.0, 6.0
HEIGHT, WIDTH = 12, 16
RAW_DEPTH = np.tile(2000 + 50 * np.arange(WIDTH, dtype=np.uint16), (HEIGHT, 1))  #: 0.25 m + 6.25 mm per column


def _camera_xml(path: Path) -> None:
    path.write_text(
        '<?xml version="1.0"?>\n<conf>\n  <camera>\n'
        f"    <px>{FOCAL}</px>\n    <py>{FOCAL}</py>\n    <u0>{U0}</u0>\n    <v0>{V0}</v0>\n"
        "  </camera>\n</conf>\n"
    )


def write_visp_depth(path: Path, raw: np.ndarray) -> None:
    """uint16 [H, W] -> ViSP's raw depth file (uint32 LE height, width, then uint16 LE values)."""
    h, w = raw.shape
    path.write_bytes(np.array([h, w], dtype="<u4").tobytes() + raw.astype("<u2").tobytes())


def write_castel_tree(root: Path, frames: int = 2) -> Path:
    """Both cameras alike (`FOCAL`, `U0`, `V0`), the identity as ``depth_M_color.txt``, and
    ``frames`` frames of HEIGHT x WIDTH: grey level 10 k + column, raw depth `RAW_DEPTH`."""
    (root / "castel").mkdir(parents=True)
    _camera_xml(root / "chateau.xml")
    _camera_xml(root / "chateau_depth.xml")
    (root / "depth_M_color.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    for k in range(frames):
        grey = np.tile((10 * k + np.arange(WIDTH)).astype(np.uint8), (HEIGHT, 1))
        cv2.imwrite(str(root / "castel" / f"image_{k:04d}.pgm"), grey)
        write_visp_depth(root / "castel" / f"depth_image_{k:04d}.bin", RAW_DEPTH)
    return root
