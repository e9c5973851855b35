"""Real RGB-D frames with sensor depth that work offline: ViSP's ``mbt-depth/castel`` sequence.

Source: the Debian package ``visp-images-data`` (3.5.0-1, the data of the ViSP examples, GPL-2, (c)
Inria; docs/eval.md) installs ``/usr/share/visp-images-data/ViSP-images/mbt-depth/castel``;
``scripts/setup.sh`` unpacks just these files into ``/usr/share/synthssl/visp-castel``
(`DEFAULT_ROOT`: the first of `ROOTS` that holds them). 30 frames of a model castle filmed by an
Intel RealSense SR300. Per frame ``castel/image_%04d.pgm`` (the colour camera's image, 8-bit grey,
640 x 480) and ``castel/depth_image_%04d.bin`` (the depth camera's raw depth); beside them the two
cameras' intrinsics and the extrinsic between them. The file formats, units and the depth camera's
lens model are those of ViSP's own reader, ``example/tracking/mbtGenericTrackingDepth.cpp``
(``read_data``, github.com/lagadic/visp):

- depth ``.bin``: uint32 little-endian height, uint32 width, then height x width uint16
  little-endian values, row-major; metres = value x `DEPTH_SCALE_M` (0.000124986647, the
  SR300's depth unit); 0 = no measurement;
- intrinsics: ``<camera><px><py><u0><v0>`` of ``chateau.xml`` (colour) and
  ``chateau_depth.xml`` (depth), ViSP's perspective model ``u = u0 + px * x`` with pixel
  (row i, column j) at (u, v) = (j, i), i.e. pixel centres at integers as in
  :mod:`synthssl.dataset.geometry`. The colour camera has no distortion; the depth
  camera's pixels are lifted with the SR300's inverse Brown-Conrady coefficients
  `DEPTH_DISTORTION` (k1, k2, p1, p2, k3), which ViSP's reader hard-codes beside the same
  px/py/u0/v0 (``rs_deproject_pixel_to_point``);
- extrinsic: ``depth_M_color.txt``, a 4 x 4 homogeneous matrix in ViSP's ``aMb``
  convention (``X_a = aMb @ X_b``): it maps colour-camera coordinates to depth-camera
  coordinates (the tracker moves its colour pose to the depth camera with
  ``depth_M_color * cMo``). Registration therefore uses its inverse, ``color_M_depth``.

Registration (`register_depth`): every depth pixel with a measurement is lifted to 3-D in
the depth camera, moved into the colour camera, projected with the colour intrinsics and
written to the pixel whose centre is nearest; where several land on one pixel the
nearest surface (smallest z) wins. Nothing is interpolated, so colour pixels that no
depth sample reaches stay 0: occlusion shadows, the regions outside the depth camera's
view, and a regular pattern of single-pixel gaps inside surfaces (the colour focal length
is 1.29x the depth one, so there are more colour pixels than depth samples).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synthssl.dataset.geometry import nearest_pixel, project, transform

__all__ = [
    "RGBDFrame",
    "load_castel",
    "register_depth",
    "deproject",
    "read_visp_depth",
    "read_visp_intrinsics",
    "read_visp_homogeneous",
    "DEFAULT_ROOT",
    "ROOTS",
    "FRAMES",
    "DEPTH_SCALE_M",
    "DEPTH_DISTORTION",
]

#: Where ``scripts/setup.sh`` unpacks the frames (without installing the package), then where the
#: package installs them; `DEFAULT_ROOT` is the first that holds them.
ROOTS = (Path("/usr/share/synthssl/visp-castel"), Path("/usr/share/visp-images-data/ViSP-images/mbt-depth/castel"))
DEFAULT_ROOT = next((r for r in ROOTS if (r / "depth_M_color.txt").is_file()), ROOTS[0])
FRAMES = 30  #: frames in visp-images-data 3.5.0
DEPTH_SCALE_M = 0.000124986647  #: metres per raw depth unit (SR300), from ViSP's reader
#: (k1, k2, p1, p2, k3) of the SR300 depth camera's inverse Brown-Conrady model, from ViSP's reader
DEPTH_DISTORTION = (0.165056542, -0.0508309528, 0.00435937941, 0.00541406544, 0.250085592)
_INSTALL = "bash scripts/setup.sh (or apt-get install visp-images-data)"


@dataclass(frozen=True)
class RGBDFrame:
    """One real frame with depth registered to its image.

    name: ``visp-castel/NNNN``; rgb: uint8 [H, W, 3] (the grey image in all three channels);
    depth: float32 [H, W] colour-camera z-depth in metres, 0 = no measurement;
    valid: bool [H, W] (depth > 0); K: float64 [3, 3] colour intrinsics (OpenCV camera).
    """

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    K: np.ndarray


def read_visp_depth(path: str | Path) -> np.ndarray:
    """A ViSP raw depth file -> uint16 [H, W] raw units (header: uint32 LE height, width)."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise ValueError(f"castel: {path} is not a ViSP depth file (shorter than its 8-byte header)")
    height, width = (int(n) for n in np.frombuffer(data[:8], dtype="<u4"))
    if len(data) != 8 + 2 * height * width:
        raise ValueError(f"castel: {path} holds {len(data) - 8} bytes of depth, expected {height} x {width} x 2")
    return np.frombuffer(data[8:], dtype="<u2").reshape(height, width).astype(np.uint16)


def read_visp_intrinsics(path: str | Path) -> np.ndarray:
    """``<camera><px><py><u0><v0>`` of a ViSP tracker XML -> K float64 [3, 3]."""
    try:
        camera = ET.parse(path).getroot().find("camera")
        px, py, u0, v0 = (float(camera.findtext(k)) for k in ("px", "py", "u0", "v0"))
    except (ET.ParseError, AttributeError, TypeError, ValueError):
        raise ValueError(f"castel: {path} has no <camera> with numeric px, py, u0, v0") from None
    return np.array([[px, 0.0, u0], [0.0, py, v0], [0.0, 0.0, 1.0]])


def read_visp_homogeneous(path: str | Path) -> np.ndarray:
    """A ViSP ``vpHomogeneousMatrix`` text file (4 rows of 4 numbers) -> float64 [4, 4], checked rigid."""
    try:
        M = np.loadtxt(path, dtype=np.float64)
    except ValueError:
        raise ValueError(f"castel: {path} is not 4 rows of 4 numbers") from None
    if M.shape != (4, 4) or not np.allclose(M[3], [0, 0, 0, 1]):
        raise ValueError(f"castel: {path} is not a 4 x 4 homogeneous matrix (last row 0 0 0 1)")
    if not np.allclose(M[:3, :3] @ M[:3, :3].T, np.eye(3), atol=1e-5) or np.linalg.det(M[:3, :3]) <= 0:
        raise ValueError(f"castel: {path}: the 3 x 3 block is not a rotation")
    return M


def deproject(depth: np.ndarray, K: np.ndarray, distortion: tuple[float, ...] = (0.0,) * 5) -> np.ndarray:
    """depth float [H, W] (metres, z) -> camera-frame points float64 [H, W, 3].

    The pixel (row i, column j) has normalised coordinates x = (j - cx) / fx,
    y = (i - cy) / fy, then the inverse Brown-Conrady model (k1, k2, p1, p2, k3) as the
    RealSense SDK and ViSP apply it when lifting: r2 = x^2 + y^2,
    f = 1 + k1 r2 + k2 r2^2 + k3 r2^3, x' = x f + 2 p1 x y + p2 (r2 + 2 x^2),
    y' = y f + 2 p2 x y + p1 (r2 + 2 y^2); the point is z (x', y', 1). Zero
    coefficients are the plain pinhole (`synthssl.dataset.geometry.unproject` for a K
    without skew).
    """
    k1, k2, p1, p2, k3 = (float(c) for c in distortion)
    K = np.asarray(K, dtype=np.float64)
    h, w = depth.shape
    i, j = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (j - K[0, 2]) / K[0, 0]
    y = (i - K[1, 2]) / K[1, 1]
    r2 = x * x + y * y
    f = 1.0 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    xd = x * f + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * f + 2.0 * p2 * x * y + p1 * (r2 + 2.0 * y * y)
    z = np.asarray(depth, dtype=np.float64)
    return np.stack([xd * z, yd * z, z], axis=-1)


def register_depth(
    depth: np.ndarray,
    K_depth: np.ndarray,
    color_M_depth: np.ndarray,
    K_color: np.ndarray,
    color_shape: tuple[int, int],
    distortion: tuple[float, ...] = (0.0,) * 5,
) -> np.ndarray:
    """Depth-camera depth -> colour-camera z-depth on the colour pixel grid.

    depth: float [Hd, Wd] metres (0 = none); K_depth, K_color: [3, 3]; color_M_depth:
    [4, 4] with ``X_color = color_M_depth @ X_depth``; color_shape: (Hc, Wc); distortion:
    the depth camera's (k1, k2, p1, p2, k3) for `deproject`. Each measured depth pixel
    goes to the colour pixel whose centre is nearest to its projection; the smallest
    z wins; points behind the colour camera or outside its image are dropped.
    Returns float32 [Hc, Wc] metres, 0 where no depth sample landed.
    """
    measured = np.asarray(depth) > 0
    points = transform(deproject(depth, K_depth, distortion)[measured], color_M_depth)
    uv, z = project(points, K_color)
    hc, wc = color_shape
    row, col = nearest_pixel(uv)
    keep = np.isfinite(uv).all(axis=-1) & (z > 0) & (row >= 0) & (row < hc) & (col >= 0) & (col < wc)
    nearest = np.full(hc * wc, np.inf)
    np.minimum.at(nearest, row[keep] * wc + col[keep], z[keep])
    nearest[~np.isfinite(nearest)] = 0.0
    return nearest.reshape(hc, wc).astype(np.float32)


def _need(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"castel: {path} is missing ({_INSTALL} ships the ViSP castel RGB-D frames)")
    return path


def load_castel(root: str | Path | None = None, frames: int | None = None) -> list[RGBDFrame]:
    """The castel frames (all 30, or the first ``frames``) with depth registered to the image.

    root: the ``mbt-depth/castel`` folder (None: `DEFAULT_ROOT`). A missing file raises a
    one-line FileNotFoundError naming it and ``apt-get install visp-images-data``.
    """
    root = Path(root) if root is not None else DEFAULT_ROOT
    K_color = read_visp_intrinsics(_need(root / "chateau.xml"))
    K_depth = read_visp_intrinsics(_need(root / "chateau_depth.xml"))
    color_M_depth = np.linalg.inv(read_visp_homogeneous(_need(root / "depth_M_color.txt")))
    out = []
    for k in range(FRAMES if frames is None else frames):
        image_file = _need(root / "castel" / f"image_{k:04d}.pgm")
        grey = cv2.imread(str(image_file), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            raise ValueError(f"castel: cannot decode {image_file}")
        raw = read_visp_depth(_need(root / "castel" / f"depth_image_{k:04d}.bin"))
        depth = register_depth(
            raw.astype(np.float64) * DEPTH_SCALE_M, K_depth, color_M_depth, K_color, grey.shape, DEPTH_DISTORTION
        )
        rgb = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1))
        out.append(RGBDFrame(f"visp-castel/{k:04d}", rgb, depth, depth > 0, K_color))
    return out
