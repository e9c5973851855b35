"""ViSP castel RGB-D frames: depth registration on exact geometry, the file readers, and the real package."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.castel_tree import FOCAL, HEIGHT, RAW_DEPTH, U0, V0, WIDTH, write_castel_tree, write_visp_depth

from synthssl.train.eval import castel
from synthssl.train.eval.castel import (
    DEPTH_DISTORTION,
    DEPTH_SCALE_M,
    deproject,
    load_castel,
    read_visp_depth,
    read_visp_homogeneous,
    read_visp_intrinsics,
    register_depth,
)


def _K(f: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])


def _pose(R: np.ndarray, t) -> np.ndarray:
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, t
    return M


def _plane_depth(K_depth: np.ndarray, shape: tuple[int, int], color_M_depth: np.ndarray, z_color: float) -> np.ndarray:
    """Depth-camera z-depth float64 [H, W] of the plane z = z_color of the colour camera (pinhole depth camera)."""
    h, w = shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(u - K_depth[0, 2]) / K_depth[0, 0], (v - K_depth[1, 2]) / K_depth[1, 1], np.ones((h, w))], -1)
    R, t = color_M_depth[:3, :3], color_M_depth[:3, 3]
    return (z_color - t[2]) / (rays @ R[2])  # z_color = (R @ (s * ray))_z + t_z, and the ray's z is 1


def test_roll_about_the_optical_axis_moves_every_sample_onto_a_pixel_centre():
    """A 90 degree roll, no translation, a colour focal length twice the depth one: depth pixel
    (i, j) lands exactly on colour pixel (2 j, 2 (N-1) - 2 i) with its depth unchanged; the
    colour pixels between samples get nothing (no interpolation)."""
    n = 7
    depth = np.random.default_rng(0).uniform(0.5, 3.0, (n, n))
    depth[2, 3] = 0.0  # no measurement: nothing lands
    roll = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # x_c = -y_d, y_c = x_d
    c = (n - 1) / 2
    got = register_depth(depth, _K(10.0, c, c), _pose(roll, [0, 0, 0]), _K(20.0, 2 * c, 2 * c), (2 * n - 1, 2 * n - 1))
    want = np.zeros((2 * n - 1, 2 * n - 1), np.float32)
    i, j = np.mgrid[0:n, 0:n]
    want[2 * j, 2 * (n - 1) - 2 * i] = depth
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    # the inverse (depth_M_color where color_M_depth is due) rolls the other way
    wrong = register_depth(depth, _K(10.0, c, c), _pose(roll.T, [0, 0, 0]), _K(20.0, 2 * c, 2 * c), got.shape)
    assert not np.array_equal(wrong, want)


def test_general_pose_and_intrinsics_reproduce_a_colour_plane_exactly():
    """Rotation about all axes, a translation, different intrinsics and image sizes: the plane
    z = 2 m of the colour camera, slanted in the depth camera, registers to 2 m at every colour
    pixel (the depth camera samples twice as finely, so no colour pixel stays empty)."""
    R = cv2.Rodrigues(np.array([0.1, -0.2, 0.15]))[0]
    color_M_depth = _pose(R, [0.05, -0.02, 0.03])
    K_depth, K_color = _K(40.0, 31.5, 31.5), _K(20.0, 7.5, 7.5)
    depth = _plane_depth(K_depth, (64, 64), color_M_depth, 2.0)
    assert np.ptp(depth) > 0.3  # slanted in the depth camera
    got = register_depth(depth, K_depth, color_M_depth, K_color, (16, 16))
    np.testing.assert_allclose(got, np.float32(2.0), rtol=2e-7, atol=0)
    # the extrinsic applied in the wrong direction misses the plane
    wrong = register_depth(depth, K_depth, np.linalg.inv(color_M_depth), K_color, (16, 16))
    assert np.abs(wrong[wrong > 0] - 2.0).max() > 0.1


def test_z_buffer_keeps_the_nearest_surface():
    """A square at 1 m in front of a wall at 3 m (colour frame), a depth camera 0.3 m to the
    side: the depth camera sees wall behind the square's edge that the colour camera does not,
    and those wall samples land on square pixels; every colour pixel that got a sample holds
    the surface the colour camera sees there."""
    color_M_depth = _pose(cv2.Rodrigues(np.array([0.0, 0.05, 0.0]))[0], [0.3, 0.0, 0.0])
    K_depth, K_color = _K(60.0, 39.5, 39.5), _K(30.0, 19.5, 19.5)
    wall = _plane_depth(K_depth, (80, 80), color_M_depth, 3.0)
    near = _plane_depth(K_depth, (80, 80), color_M_depth, 1.0)
    # where the depth rays meet z = 1 m inside the square |x|, |y| <= 0.2 m, they stop there
    v, u = np.mgrid[0:80, 0:80].astype(np.float64)
    rays = np.stack([(u - 39.5) / 60.0, (v - 39.5) / 60.0, np.ones((80, 80))], -1)
    hit = np.einsum("ij,hwj->hwi", color_M_depth[:3, :3], rays * near[..., None]) + color_M_depth[:3, 3]
    on_square = (np.abs(hit[..., 0]) <= 0.2) & (np.abs(hit[..., 1]) <= 0.2)
    scene = np.where(on_square, near, wall)
    got = register_depth(scene, K_depth, color_M_depth, K_color, (40, 40))
    # the colour camera's own view: the square covers |u - 19.5| <= 0.2 * 30 / 1 = 6 px
    cu = np.abs(np.arange(40) - 19.5)
    inside = (cu[:, None] <= 6.0) & (cu[None, :] <= 6.0)
    margin = (cu[:, None] <= 7.0) & (cu[None, :] <= 7.0) & ~((cu[:, None] <= 5.0) & (cu[None, :] <= 5.0))
    sure = (got > 0) & ~margin  # away from the silhouette, where nearest-pixel rounding decides
    np.testing.assert_allclose(got[sure & inside], np.float32(1.0), rtol=2e-7, atol=0)
    np.testing.assert_allclose(got[sure & ~inside], np.float32(3.0), rtol=2e-7, atol=0)
    # the z-buffer was needed: wall samples and square samples share colour pixels
    wall_only = register_depth(np.where(on_square, 0.0, wall), K_depth, color_M_depth, K_color, (40, 40))
    square_only = register_depth(np.where(on_square, near, 0.0), K_depth, color_M_depth, K_color, (40, 40))
    shared = (wall_only > 0) & (square_only > 0)
    assert shared.sum() >= 20
    np.testing.assert_array_equal(got[shared], square_only[shared])


def test_deproject_inverse_brown_conrady_by_hand():
    """Pixel (row 20, column 10), f = 100, principal point (0, 0): x = 0.1, y = 0.2, r2 = 0.05,
    f = 1 + 0.1 r2 + 0.01 r2^2 + 0.5 r2^3 = 1.0050875; x' = x f + 2 p1 x y + p2 (r2 + 2 x^2)
    = 0.10068875, y' = y f + 2 p2 x y + p1 (r2 + 2 y^2) = 0.2012275; at z = 2 m."""
    depth = np.zeros((21, 11))
    depth[20, 10] = 2.0
    points = deproject(depth, _K(100.0, 0.0, 0.0), (0.1, 0.01, 0.001, 0.002, 0.5))
    np.testing.assert_allclose(points[20, 10], [0.2013775, 0.402455, 2.0], rtol=1e-12)
    pinhole = deproject(depth, _K(100.0, 0.0, 0.0))
    np.testing.assert_allclose(pinhole[20, 10], [0.2, 0.4, 2.0], rtol=1e-12)


def test_readers(tmp_path):
    raw = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    write_visp_depth(tmp_path / "d.bin", raw)
    np.testing.assert_array_equal(read_visp_depth(tmp_path / "d.bin"), raw)
    (tmp_path / "short.bin").write_bytes((tmp_path / "d.bin").read_bytes()[:-2])
    with pytest.raises(ValueError, match="expected 3 x 4 x 2"):
        read_visp_depth(tmp_path / "short.bin")
    write_castel_tree(tmp_path / "tree", frames=1)
    np.testing.assert_array_equal(read_visp_intrinsics(tmp_path / "tree" / "chateau.xml"), _K(FOCAL, U0, V0))
    (tmp_path / "bad.xml").write_text("<conf><camera><px>1</px></camera></conf>")
    with pytest.raises(ValueError, match="px, py, u0, v0"):
        read_visp_intrinsics(tmp_path / "bad.xml")
    (tmp_path / "M.txt").write_text("1 0 0 0.5\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    assert read_visp_homogeneous(tmp_path / "M.txt")[0, 3] == 0.5
    (tmp_path / "scaled.txt").write_text("2 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    with pytest.raises(ValueError, match="not a rotation"):
        read_visp_homogeneous(tmp_path / "scaled.txt")


def test_load_castel_on_a_stand_in_tree(tmp_path):
    """Identity extrinsic: every sample keeps its z; the lens model moves no sample of this
    small view by half a pixel (at most 0.25 px, in the corners), so each keeps its own pixel
    and the registered depth is the raw depth in metres; the grey image fills all three channels."""
    frames = load_castel(write_castel_tree(tmp_path, frames=2), frames=2)
    assert [f.name for f in frames] == ["visp-castel/0000", "visp-castel/0001"]
    f = frames[1]
    assert f.rgb.shape == (HEIGHT, WIDTH, 3) and f.rgb.dtype == np.uint8
    assert (f.rgb == (10 + np.arange(WIDTH, dtype=np.uint8))[None, :, None]).all()
    np.testing.assert_array_equal(f.depth, (RAW_DEPTH * DEPTH_SCALE_M).astype(np.float32))
    assert f.valid.all()
    np.testing.assert_array_equal(f.K, _K(FOCAL, U0, V0))


def test_missing_package_is_one_line_naming_apt(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_castel(tmp_path / "nowhere")
    message = str(info.value)
    assert "bash scripts/setup.sh (or apt-get install visp-images-data)" in message and "\n" not in message
    assert str(tmp_path / "nowhere" / "chateau.xml") in message


needs_package = pytest.mark.skipif(
    not (castel.DEFAULT_ROOT / "depth_M_color.txt").is_file(),
    reason="castel frames missing (bash scripts/setup.sh, or apt-get install visp-images-data)",
)


@pytest.fixture(scope="module")
def real_frames():
    return load_castel()


@needs_package
def test_real_frames(real_frames):
    assert len(real_frames) == 30
    for f in real_frames:
        assert f.rgb.shape == (480, 640, 3) and f.rgb.dtype == np.uint8
        assert f.depth.shape == (480, 640) and f.depth.dtype == np.float32
        assert 0.18 < f.depth[f.valid].min() and f.depth[f.valid].max() < 0.83  # metres: a table-top castle
    np.testing.assert_array_equal(
        real_frames[0].K, [[615.1674804688, 0, 312.1889953613], [0, 615.1675415039, 243.4373779297], [0, 0, 1]]
    )
    assert int(real_frames[0].valid.sum()) == 120629  # 39.3 % of the colour pixels have a depth sample


def _depth_edges(depth: np.ndarray, rel: float = 0.05) -> np.ndarray:
    """Pixels with a depth jump of more than ``rel`` (relative) in their 3 x 3 neighbourhood,
    after filling the single-pixel gaps between samples with a neighbour's depth."""
    ker = np.ones((3, 3), np.uint8)
    filled = np.where(depth > 0, depth, cv2.dilate(depth, ker))
    hi = cv2.dilate(filled, ker)
    lo = cv2.erode(np.where(filled > 0, filled, np.float32(1e3)), ker)
    return (filled > 0) & (hi - lo > rel * lo)


def _edge_agreement(grey: np.ndarray, depth: np.ndarray) -> float:
    """Fraction of depth-edge pixels within 2 px of an intensity (Canny) edge."""
    canny = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.5), 30, 90)
    distance = cv2.distanceTransform((canny == 0).astype(np.uint8), cv2.DIST_L2, 5)
    return float((distance[_depth_edges(depth)] <= 2.0).mean())


@needs_package
def test_registered_depth_edges_meet_image_edges(real_frames):
    """Over frames 0, 5, ..., 25, depth edges agree with the image's edges more often as
    registered than after each plausible mistake: the extrinsic applied the wrong way round,
    its rotation transposed (the file before visp-images' 2018 fix), the depth lens model
    dropped, or the map shifted 4 px left, right or up. (4 px down is as good as registered
    on the later frames: the data's own vertical residual, docs/eval.md.)"""
    root = castel.DEFAULT_ROOT
    K_color = read_visp_intrinsics(root / "chateau.xml")
    K_depth = read_visp_intrinsics(root / "chateau_depth.xml")
    depth_M_color = read_visp_homogeneous(root / "depth_M_color.txt")
    transposed = depth_M_color.copy()
    transposed[:3, :3] = depth_M_color[:3, :3].T
    scores: dict[str, list[float]] = {}
    for k in range(0, 30, 5):
        frame = real_frames[k]
        grey = frame.rgb[..., 0]
        metres = read_visp_depth(root / "castel" / f"depth_image_{k:04d}.bin") * DEPTH_SCALE_M
        maps = {
            "registered": frame.depth,
            "wrong_direction": register_depth(metres, K_depth, depth_M_color, K_color, grey.shape, DEPTH_DISTORTION),
            "transposed": register_depth(
                metres, K_depth, np.linalg.inv(transposed), K_color, grey.shape, DEPTH_DISTORTION
            ),
            "pinhole": register_depth(metres, K_depth, np.linalg.inv(depth_M_color), K_color, grey.shape),
            "left": np.roll(frame.depth, -4, axis=1),
            "right": np.roll(frame.depth, 4, axis=1),
            "up": np.roll(frame.depth, -4, axis=0),
        }
        for name, depth in maps.items():
            scores.setdefault(name, []).append(_edge_agreement(grey, depth))
    mean = {name: float(np.mean(s)) for name, s in scores.items()}
    assert mean["registered"] > 0.5
    for name in ("wrong_direction", "transposed", "pinhole", "left", "right", "up"):
        assert mean["registered"] > mean[name] + 0.05, (name, mean)
