"""Exact view pairs for the DSC tests: spheres resting on a floor, seen by pinhole cameras.

Uses the shared analytic ray caster (tests/helpers/analytic_scene.py) with arbitrary intrinsics,
so crops, resizes and flips are just different K, and assembles batches as the trainer's
loader / `ViewBatch` hold them. Shard-format conventions: OpenCV camera frame, depth =
z-depth in metres (0 = no surface), instance 1 = floor, objects 3, 4, ...
"""

from __future__ import annotations

import numpy as np
import torch

from helpers.analytic_scene import _raycast, look_at  # noqa: F401  (look_at re-exported for the tests)
from synthssl.dataset.contour import contour_from_instance


def intrinsics(size: int, fov_deg: float = 60.0) -> np.ndarray:
    f = 0.5 * size / np.tan(np.radians(fov_deg) / 2)
    c = (size - 1) / 2
    return np.array([[f, 0, c], [0, f, c], [0, 0, 1.0]])


def crop_flip_intrinsics(
    K: np.ndarray, box: tuple[float, float, float, float], out_size: int, flip: bool
) -> np.ndarray:
    """K of the view cropped to `box` (x0, y0, x1, y1; pixel-edge coords), resized to
    out_size x out_size and optionally flipped horizontally."""
    x0, y0, x1, y1 = box
    sx, sy = out_size / (x1 - x0), out_size / (y1 - y0)
    A = np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5], [0, 0, 1]])
    if flip:
        A = np.array([[-1.0, 0, out_size - 1], [0, 1, 0], [0, 0, 1]]) @ A
    return A @ K


def random_scene(rng: np.random.Generator, n_objects: int = 4) -> list[tuple[np.ndarray, float]]:
    """Spheres (centre, radius) resting on the floor z = 0 around the origin."""
    spheres = []
    for _ in range(n_objects):
        r = rng.uniform(0.25, 0.6)
        xy = rng.uniform(-1.2, 1.2, size=2)
        spheres.append((np.array([xy[0], xy[1], r]), r))
    return spheres


def render(spheres, K: np.ndarray, cam_to_world: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(depth float32 [H, W] metres, instance int64 [H, W]) by exact ray casting."""
    depth, inst, _ = render_with_normals(spheres, K, cam_to_world, size)
    return depth, inst


def render_with_normals(
    spheres, K: np.ndarray, cam_to_world: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth, instance, normal float32 [H, W, 3] unit camera-frame normals, 0 = none), by the
    shared analytic ray caster (tests/helpers/analytic_scene.py) with any intrinsics K."""
    centres = np.array([c for c, _ in spheres])
    radii = np.array([r for _, r in spheres])
    depth, normal, inst = _raycast(
        size, np.asarray(K, np.float64), np.asarray(cam_to_world, np.float64), centres, radii
    )
    return depth.astype(np.float32), inst, normal.astype(np.float32)


def random_pair_batch(
    batch: int, size: int, seed: int = 0, crop: bool = False, flip: bool = False, render_size: int | None = None
):
    """A batch of view pairs of random scenes as torch tensors.

    Returns dict with depth [B,2,H,W], instance [B,2,H,W], normal [B,2,H,W,3] (camera frame,
    x negated on flipped views as in `ViewBatch`), intrinsics [B,2,3,3],
    cam_to_world [B,2,4,4], crop_boxes [B,2,4] and flipped [B,2] (pixel-edge crop
    boxes in the original `render_size` image).
    """
    rng = np.random.default_rng(seed)
    full = render_size or size
    out = {k: [] for k in ("depth", "instance", "normal", "intrinsics", "cam_to_world", "crop_boxes", "flipped")}
    for _ in range(batch):
        spheres = random_scene(rng)
        az0 = rng.uniform(0, 2 * np.pi)
        views = {k: [] for k in out}
        for v in range(2):
            az = az0 + (0 if v == 0 else rng.uniform(0.2, 0.6))
            dist, elev = rng.uniform(3.5, 4.5), rng.uniform(0.5, 0.9)
            eye = np.array([dist * np.cos(az) * np.cos(elev), dist * np.sin(az) * np.cos(elev), dist * np.sin(elev)])
            T = look_at(eye, np.array([0.0, 0.0, 0.3]))
            K = intrinsics(full)
            box = (0.0, 0.0, float(full), float(full))
            if crop:
                s = rng.uniform(0.5, 0.9) * full
                x0, y0 = rng.uniform(0, full - s, size=2)
                box = (float(x0), float(y0), float(x0 + s), float(y0 + s))
            fl = bool(flip and rng.random() < 0.5)
            K = crop_flip_intrinsics(K, box, size, fl)
            depth, inst, normal = render_with_normals(spheres, K, T, size)
            if fl:  # stored like ViewBatch: x negated
                normal = normal * np.array([-1.0, 1.0, 1.0], np.float32)
            for k, val in (
                ("depth", depth),
                ("instance", inst),
                ("normal", normal),
                ("intrinsics", K),
                ("cam_to_world", T),
                ("crop_boxes", np.array(box)),
                ("flipped", fl),
            ):
                views[k].append(val)
        for k in out:
            out[k].append(np.stack(views[k]))
    dtypes = {
        "depth": torch.float32,
        "instance": torch.long,
        "normal": torch.float32,
        "intrinsics": torch.float32,
        "cam_to_world": torch.float32,
        "crop_boxes": torch.float32,
        "flipped": torch.bool,
    }
    return {k: torch.as_tensor(np.stack(v)).to(dtypes[k]) for k, v in out.items()}


def raw_scene_batch(batch: int, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Collated scenes as the trainer's loader gives them (`synthssl.train.data.scenes`),
    from the ray caster: rgb uint8 [B,2,H,W,3] (a colour per instance plus noise), depth,
    normal, contour, instance, category, intrinsics, cam_to_world, scene_id."""
    b = random_pair_batch(batch, size, seed=seed)
    rng = np.random.default_rng(seed + 1)
    palette = torch.as_tensor(rng.integers(0, 256, size=(16, 3)), dtype=torch.float32)
    inst = b["instance"]
    rgb = palette[inst.clamp_max(15)] + torch.as_tensor(
        rng.normal(0, 8, size=tuple(inst.shape) + (3,)), dtype=torch.float32
    )
    return {
        "rgb": rgb.clamp(0, 255).to(torch.uint8),
        "depth": b["depth"],
        "normal": b["normal"].to(torch.float16),
        "contour": torch.as_tensor(contour_from_instance(inst.numpy())),
        "instance": inst.to(torch.int32),
        "category": inst.clamp_max(3).to(torch.int32),
        "intrinsics": b["intrinsics"],
        "cam_to_world": b["cam_to_world"],
        "scene_id": torch.arange(batch, dtype=torch.long),
    }
