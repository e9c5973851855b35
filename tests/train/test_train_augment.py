"""Augmentation keeps geometry exact: K, depth, normals, labels and cross-view reprojection."""

from __future__ import annotations

import numpy as np
import torch
from helpers.analytic_scene import make_scene

from synthssl.dataset.geometry import reproject, unproject
from synthssl.train.config import AugmentConfig
from synthssl.train.data.augment import Crops, augment_scenes, crop_intrinsics, sample_crops
from synthssl.train.data.batch import IMAGENET_MEAN, IMAGENET_STD

SIZE = 48
OUT = 32


def _raw(scenes: list[dict]) -> dict[str, torch.Tensor]:
    raw = {
        k: torch.from_numpy(np.stack([np.asarray(s[k]) for s in scenes]))
        for k in ("rgb", "depth", "normal", "contour", "intrinsics", "cam_to_world")
    }
    for k in ("instance", "category"):
        raw[k] = torch.from_numpy(np.stack([s[k].astype(np.int16) for s in scenes]))
    raw["scene_id"] = torch.arange(len(scenes))
    return raw


def _source_coords(box, flipped, out):
    x0, y0, x1, y1 = box
    u = np.arange(out)
    uu = out - 1 - u if flipped else u
    xs = x0 + (uu + 0.5) * (x1 - x0) / out - 0.5
    ys = y0 + (np.arange(out) + 0.5) * (y1 - y0) / out - 0.5
    return np.meshgrid(xs, ys)


def test_maps_and_intrinsics_stay_exact():
    scenes = [make_scene(i, size=SIZE) for i in range(3)]
    batch = augment_scenes(
        _raw(scenes), AugmentConfig(crop_scale=[0.3, 1.0], flip_p=0.5), OUT, torch.Generator().manual_seed(3)
    )
    assert batch.flipped.any() and not batch.flipped.all()
    for b, s in enumerate(scenes):
        for v in range(2):
            XS, YS = _source_coords(batch.crop_boxes[b, v].tolist(), bool(batch.flipped[b, v]), OUT)
            ri, ci = np.rint(YS).astype(int), np.rint(XS).astype(int)
            d_src = s["depth"][v].astype(np.float64)[ri, ci]
            d = batch.depth[b, v].double().numpy()
            np.testing.assert_array_equal(d, d_src)  # nearest: true surface depths, never blended
            # A camera point lifted from the augmented pixel with K' is the point lifted from
            # the (sub-pixel) source location with the original K: the crop/flip is exact.
            K0 = s["intrinsics"][v].astype(np.float64)
            expect = np.stack([(XS - K0[0, 2]) / K0[0, 0] * d_src, (YS - K0[1, 2]) / K0[1, 1] * d_src, d_src], -1)
            got = unproject(d, batch.intrinsics[b, v].double().numpy())
            np.testing.assert_allclose(got, expect, atol=1e-5)
            n_src = s["normal"][v].astype(np.float32)[ri, ci].copy()
            if batch.flipped[b, v]:
                n_src[..., 0] *= -1
            np.testing.assert_array_equal(batch.normal[b, v].permute(1, 2, 0).numpy(), n_src)
            np.testing.assert_array_equal(batch.instance[b, v].numpy(), s["instance"][v][ri, ci])
            np.testing.assert_array_equal(batch.category[b, v].numpy(), s["category"][v][ri, ci])
            np.testing.assert_array_equal(batch.contour[b, v].numpy(), s["contour"][v][ri, ci])
            np.testing.assert_array_equal(batch.valid[b, v].numpy(), d_src > 0)


def test_cross_view_reprojection_survives_augmentation():
    """View-0 pixels re-projected into view 1 with augmented depth/K hit the same object."""
    scenes = [make_scene(i, size=SIZE) for i in range(4)]
    batch = augment_scenes(
        _raw(scenes), AugmentConfig(crop_scale=[0.6, 1.0], flip_p=0.5), OUT, torch.Generator().manual_seed(0)
    )
    agree, total = 0, 0
    for b in range(len(scenes)):
        d = batch.depth[b].double().numpy()
        K = batch.intrinsics[b].double().numpy()
        T = batch.cam_to_world[b].double().numpy()
        inst = batch.instance[b].numpy()
        uv, vis = reproject(d[0], K[0], T[0], d[1], K[1], T[1], rel_tol=0.03)
        r, c = np.rint(uv[..., 1][vis]).astype(int), np.rint(uv[..., 0][vis]).astype(int)
        agree += int((inst[0][vis] == inst[1][r, c]).sum())
        total += int(vis.sum())
    assert total > 500
    assert agree / total > 0.97


def test_identity_crop_leaves_intrinsics_and_flip_is_an_involution():
    K = torch.tensor([[[40.0, 0.5, 23.5], [0.0, 41.0, 20.0], [0, 0, 1]]])
    full = Crops(torch.tensor([[0.0, 0.0, 48.0, 48.0]]), torch.tensor([False]))
    torch.testing.assert_close(crop_intrinsics(K, full, 48), K)
    flip = Crops(full.boxes, torch.tensor([True]))
    once = crop_intrinsics(K, flip, 48)
    assert once[0, 0, 0] == -40.0 and abs(float(once[0, 0, 2]) - (47 - 23.5)) < 1e-5
    torch.testing.assert_close(crop_intrinsics(once, flip, 48), K)


def test_crops_respect_scale_and_ratio():
    crops = sample_crops(500, 48, 64, (0.2, 0.6), (0.75, 1.333), 0.5, torch.Generator().manual_seed(0))
    x0, y0, x1, y1 = crops.boxes.unbind(1)
    area = (x1 - x0) * (y1 - y0) / (48 * 64)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 64).all() and (y1 <= 48).all()
    assert area.min() > 0.17 and area.max() < 0.65
    assert 0.4 < crops.flip.float().mean() < 0.6


def test_photometric_only_touches_rgb():
    scenes = [make_scene(0, size=SIZE)]
    raw = _raw(scenes)
    plain = AugmentConfig(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)
    strong = AugmentConfig(jitter_p=1.0, grayscale_p=1.0, blur_p=1.0)
    a = augment_scenes(raw, plain, OUT, torch.Generator().manual_seed(5))
    b = augment_scenes(raw, strong, OUT, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a.crop_boxes, b.crop_boxes)
    for key in ("depth", "normal", "instance", "contour", "intrinsics"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key))
    assert not torch.allclose(a.rgb, b.rgb)
    # grayscale: the three de-normalised channels are equal
    mean = torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    rgb = b.rgb * std + mean
    torch.testing.assert_close(rgb[:, :, 0], rgb[:, :, 1], atol=1e-5, rtol=0)
