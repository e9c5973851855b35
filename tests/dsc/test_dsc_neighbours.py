"""Neighbour rules of the pixel level: geometric, crop (PixPro), feature (DenseCL)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import raycast

from synthssl.dataset import geometry
from synthssl.train.neighbours.crop_neighbours import crop_neighbours
from synthssl.train.neighbours.dense_correspondence import geometric_neighbours
from synthssl.train.neighbours.dense_neighbours import location_pixels
from synthssl.train.neighbours.feature_neighbours import feature_neighbours
from synthssl.train.neighbours.reprojection import nearest_pixel, reproject_pixels


def _geo(b, fhw):
    return geometric_neighbours(
        b["depth"][:, 0],
        b["intrinsics"][:, 0],
        b["cam_to_world"][:, 0],
        b["depth"][:, 1],
        b["intrinsics"][:, 1],
        b["cam_to_world"][:, 1],
        fhw,
        fhw,
    )


def _instance_agreement(b, neighbours, image_hw, fhw):
    pix = location_pixels(image_hw, fhw)
    i1 = b["instance"][:, 0][:, pix[:, 1], pix[:, 0]]
    i2 = b["instance"][:, 1][:, pix[:, 1], pix[:, 0]]
    same = i1[:, :, None] == i2[:, None, :]
    m = neighbours.mask
    return (same & m).sum().item() / max(1, m.sum().item()), int(m.sum())


def test_geometric_matches_dataset_reprojection_exactly():
    """At full resolution the partner is the nearest pixel of the exact reprojection."""
    size = 24
    b = raycast.random_pair_batch(2, size, seed=3, crop=True, flip=True, render_size=40)
    n = _geo(b, (size, size))
    for i in range(2):
        uv, visible = geometry.reproject(
            b["depth"][i, 0].numpy(),
            b["intrinsics"][i, 0].numpy(),
            b["cam_to_world"][i, 0].numpy(),
            b["depth"][i, 1].numpy(),
            b["intrinsics"][i, 1].numpy(),
            b["cam_to_world"][i, 1].numpy(),
            rel_tol=0.02,
        )
        has = n.has_partner[i].reshape(size, size).numpy()
        assert visible.sum() > 50
        # same visibility except (rare) boundary pixels where the partner depth test differs
        assert (has == visible).mean() > 0.99
        both = has & visible
        rows, cols = geometry.nearest_pixel(uv)
        expect = (rows * size + cols)[both]
        got = n.partner[i].reshape(size, size).numpy()[both]
        assert (expect == got).mean() > 0.99


def _all_pixels(h: int, w: int) -> torch.Tensor:
    """long [h*w, 2] (u, v) of every pixel, row-major."""
    u, v = torch.meshgrid(torch.arange(w), torch.arange(h), indexing="xy")
    return torch.stack([u, v], -1).reshape(-1, 2)


def _numpy_reprojection(b, i):
    return geometry.reproject(
        b["depth"][i, 0].numpy(),
        b["intrinsics"][i, 0].numpy(),
        b["cam_to_world"][i, 0].numpy(),
        b["depth"][i, 1].numpy(),
        b["intrinsics"][i, 1].numpy(),
        b["cam_to_world"][i, 1].numpy(),
        rel_tol=0.02,
    )


def _torch_reprojection(b, size):
    return reproject_pixels(
        _all_pixels(size, size),
        b["depth"][:, 0],
        b["intrinsics"][:, 0],
        b["cam_to_world"][:, 0],
        b["depth"][:, 1],
        b["intrinsics"][:, 1],
        b["cam_to_world"][:, 1],
        rel_tol=0.02,
    )


def test_torch_reprojection_equals_dataset_geometry_on_the_same_inputs():
    """DSC's torch reprojection is dataset/geometry.py's: same uv, same visibility, same nearest pixel."""
    size = 24
    b = raycast.random_pair_batch(3, size, seed=4, crop=True, flip=True, render_size=40)
    seen = _torch_reprojection(b, size)
    for i in range(3):
        uv, visible = _numpy_reprojection(b, i)
        got_uv = seen.uv[i].reshape(size, size, 2).numpy()
        assert np.array_equal(np.isnan(got_uv), np.isnan(uv))
        np.testing.assert_allclose(got_uv[~np.isnan(uv)], uv[~np.isnan(uv)], rtol=0, atol=1e-9)
        assert visible.sum() > 50
        assert np.array_equal(seen.visible[i].reshape(size, size).numpy(), visible)
        rows, cols = geometry.nearest_pixel(uv)
        near = seen.nearest[i].reshape(size, size, 2).numpy()
        assert np.array_equal(near[..., 0][visible], cols[visible]) and np.array_equal(
            near[..., 1][visible], rows[visible]
        )


def test_half_pixels_round_as_numpy_rint():
    """Points landing exactly between two pixels round half to even in torch as in NumPy (not floor(x + 0.5))."""
    x = torch.tensor([-0.5, 0.5, 1.5, 2.5, 3.5, 2.4999, 7.0], dtype=torch.float64)
    assert torch.equal(nearest_pixel(x), torch.from_numpy(np.rint(x.numpy())))
    # A principal point shifted by half a pixel puts every reprojected pixel on a half-pixel.
    # Focal length and principal point are powers of two apart, so every step of both
    # implementations is exact in float64 and the half-pixels are exact on any CPU (with
    # a focal length of 10, 1/10 rounds and the last bit then depends on the BLAS kernel).
    size = 8
    K = torch.tensor([[8.0, 0, 3.5], [0, 8.0, 3.5], [0, 0, 1]], dtype=torch.float64)
    K_half = K.clone()
    K_half[0, 2] += 0.5
    depth = torch.ones(1, size, size)
    depth[0, :, 5] = 2.0  # a step in view b's depth: the rounding decides what is occluded
    eye = torch.eye(4)[None]
    b = {
        "depth": torch.stack([torch.ones(1, size, size), depth], 1),
        "intrinsics": torch.stack([K, K_half])[None],
        "cam_to_world": torch.stack([eye, eye], 1),
    }
    seen = _torch_reprojection(b, size)
    uv, visible = _numpy_reprojection(b, 0)
    assert np.all(uv[..., 0] % 1.0 == 0.5) and torch.all(seen.uv[0, :, 0] % 1.0 == 0.5)
    assert np.array_equal(seen.visible[0].reshape(size, size).numpy(), visible)
    floor_rule = np.floor(uv[..., 0] + 0.5)
    assert not np.array_equal(np.rint(uv[..., 0]), floor_rule)  # the two rules really differ here
    assert np.array_equal(seen.nearest[0, :, 0].reshape(size, size).numpy()[visible], np.rint(uv[..., 0])[visible])


@pytest.mark.parametrize("crop,flip", [(False, False), (True, False), (True, True)])
def test_geometric_neighbours_land_on_same_instance(crop, flip):
    b = raycast.random_pair_batch(12, 64, seed=1, crop=crop, flip=flip, render_size=96)
    n = _geo(b, (8, 8))
    agree, count = _instance_agreement(b, n, (64, 64), (8, 8))
    assert count > 100
    assert agree > 0.95, agree


def test_flip_is_carried_by_intrinsics():
    """Flipping view 2 (through K) mirrors its partners' columns and nothing else."""
    size, f = 40, 8  # odd stride 5: location centres sit on pixels, so mirroring is exact
    rng = np.random.default_rng(5)
    spheres = raycast.random_scene(rng)
    T1 = raycast.look_at(np.array([4.0, 0.5, 2.5]), np.array([0, 0, 0.3]))
    T2 = raycast.look_at(np.array([3.5, 2.0, 2.5]), np.array([0, 0, 0.3]))
    K = raycast.intrinsics(size)
    Kf = raycast.crop_flip_intrinsics(K, (0, 0, size, size), size, True)
    d1, _, n1 = raycast.render_with_normals(spheres, K, T1, size)
    d2, _, n2 = raycast.render_with_normals(spheres, K, T2, size)
    d2f, _, n2f = raycast.render_with_normals(spheres, Kf, T2, size)
    assert np.allclose(d2f, d2[:, ::-1])
    n2f = n2f * np.array([-1.0, 1.0, 1.0], np.float32)  # stored like ViewBatch: x negated

    def t(a):
        return torch.as_tensor(np.asarray(a, np.float32))[None]

    def tn(a):
        return torch.as_tensor(np.ascontiguousarray(a)).permute(2, 0, 1)[None]  # [1, 3, H, W]

    no, yes = torch.tensor([False]), torch.tensor([True])
    mirror = torch.arange(f * f).reshape(f, f).flip(1).reshape(-1)
    plain = geometric_neighbours(t(d1), t(K), t(T1), t(d2), t(K), t(T2), (f, f), (f, f))
    flipped = geometric_neighbours(t(d1), t(K), t(T1), t(d2f), t(Kf), t(T2), (f, f), (f, f))
    assert plain.mask.sum() > 20
    assert torch.equal(plain.mask[0][:, mirror], flipped.mask[0])
    normals = dict(normal_tol_deg=10.0)  # tight: curved spheres lose matches
    plain_n = geometric_neighbours(
        t(d1),
        t(K),
        t(T1),
        t(d2),
        t(K),
        t(T2),
        (f, f),
        (f, f),
        normal1=tn(n1),
        normal2=tn(n2),
        flipped1=no,
        flipped2=no,
        **normals,
    )
    flipped_n = geometric_neighbours(
        t(d1),
        t(K),
        t(T1),
        t(d2f),
        t(Kf),
        t(T2),
        (f, f),
        (f, f),
        normal1=tn(n1),
        normal2=tn(n2f),
        flipped1=no,
        flipped2=yes,
        **normals,
    )
    assert 0 < plain_n.mask.sum() < plain.mask.sum()  # the normal test removes some matches
    assert torch.equal(plain_n.mask[0][:, mirror], flipped_n.mask[0])
    ignoring_flip = geometric_neighbours(
        t(d1),
        t(K),
        t(T1),
        t(d2f),
        t(Kf),
        t(T2),
        (f, f),
        (f, f),
        normal1=tn(n1),
        normal2=tn(n2f),
        flipped1=no,
        flipped2=no,
        **normals,
    )
    assert not torch.equal(ignoring_flip.mask, flipped_n.mask)


def test_geometric_rejects_bad_shapes():
    d = torch.ones(2, 8, 8)
    with pytest.raises(ValueError, match="intrinsics1"):
        geometric_neighbours(
            d,
            torch.eye(3)[None],
            torch.eye(4).repeat(2, 1, 1),
            d,
            torch.eye(3).repeat(2, 1, 1),
            torch.eye(4).repeat(2, 1, 1),
            (2, 2),
            (2, 2),
        )


def test_crop_neighbours_identity_shift_and_flip():
    full = torch.tensor([[0.0, 0.0, 64.0, 64.0]])
    no = torch.tensor([False])
    same = crop_neighbours(full, no, full, no, (4, 4), (4, 4))
    assert torch.equal(same.partner[0], torch.arange(16))
    assert same.mask[0].sum(1).eq(1).all()  # 0.7 x diagonal < one bin: only itself
    mirrored = crop_neighbours(full, no, full, torch.tensor([True]), (4, 4), (4, 4))
    assert torch.equal(mirrored.partner[0], torch.arange(16).reshape(4, 4).flip(1).reshape(-1))
    # view 2 = the right half of view 1, at twice the resolution per bin
    right = torch.tensor([[32.0, 0.0, 64.0, 64.0]])
    shifted = crop_neighbours(full, no, right, no, (4, 4), (4, 4))
    cols = torch.arange(16) % 4
    # view-1 column centres x = 8, 24, 40, 56; view-2 ones 36, 44, 52, 60; limit 0.7 * 16 * sqrt(2)
    assert not shifted.has_partner[0][cols == 0].any()
    assert shifted.has_partner[0][cols >= 1].all()
    assert torch.equal(shifted.partner[0][cols == 1], 4 * torch.arange(4))  # x=24 -> x=36


def test_crop_neighbours_rejects_empty_box():
    box = torch.tensor([[5.0, 0.0, 5.0, 10.0]])
    with pytest.raises(ValueError, match="crop_boxes1"):
        crop_neighbours(box, torch.tensor([False]), box, torch.tensor([False]), (2, 2), (2, 2))


def test_feature_neighbours_recover_a_permutation():
    g = torch.Generator().manual_seed(0)
    f1 = torch.randn(3, 16, 4, 4, generator=g)
    perm = torch.randperm(16, generator=g)
    f2 = f1.flatten(2)[:, :, perm].reshape(3, 16, 4, 4)
    n = feature_neighbours(f1, f2, k=2)
    inverse = torch.argsort(perm)
    assert torch.equal(n.partner, inverse.expand(3, 16))
    assert n.mask.sum(2).eq(2).all()


def test_geometric_neighbours_after_trainer_augmentation():
    """Crops, resizes and flips of the trainer's batched augmentation keep matches exact."""
    from synthssl.train.config import AugmentConfig
    from synthssl.train.data.augment import augment_scenes

    raw = raycast.raw_scene_batch(12, 96, seed=2)
    batch = augment_scenes(raw, AugmentConfig(crop_scale=[0.3, 1.0], flip_p=0.5), 64, torch.Generator().manual_seed(0))
    assert batch.flipped.any() and (~batch.flipped).any()
    fhw = (8, 8)
    geometry = (
        batch.depth[:, 0],
        batch.intrinsics[:, 0],
        batch.cam_to_world[:, 0],
        batch.depth[:, 1],
        batch.intrinsics[:, 1],
        batch.cam_to_world[:, 1],
        fhw,
        fhw,
    )
    n = geometric_neighbours(*geometry)
    agree, count = _instance_agreement({"instance": batch.instance}, n, (64, 64), fhw)
    assert count > 100
    assert agree > 0.95, agree
    with_normals = geometric_neighbours(
        *geometry,
        normal1=batch.normal[:, 0],
        normal2=batch.normal[:, 1],
        flipped1=batch.flipped[:, 0],
        flipped2=batch.flipped[:, 1],
    )
    agree_n, count_n = _instance_agreement({"instance": batch.instance}, with_normals, (64, 64), fhw)
    assert count_n > 0.8 * count and agree_n >= agree


@pytest.mark.gl
@pytest.mark.slow
def test_geometric_neighbours_on_rendered_shards(tmp_path):
    """Real render-scenes output through the trainer's loader and augmentation (DSC's rule,
    normals on): > 95 % of matches join the same instance."""
    from torch.utils.data import default_collate

    from synthssl.render.cli import main as render_scenes
    from synthssl.train.config import AugmentConfig
    from synthssl.train.data.augment import augment_scenes
    from synthssl.train.data.scenes import SceneDataset

    assert render_scenes([f"out={tmp_path}", "scenes=16", "size=96", "seed=3", "workers=1", "--no-progress"]) == 0
    dataset = SceneDataset([tmp_path])
    raw = default_collate([dataset[i] for i in range(len(dataset))])
    batch = augment_scenes(raw, AugmentConfig(), 64, torch.Generator().manual_seed(0))
    fhw = (8, 8)
    n = geometric_neighbours(
        batch.depth[:, 0],
        batch.intrinsics[:, 0],
        batch.cam_to_world[:, 0],
        batch.depth[:, 1],
        batch.intrinsics[:, 1],
        batch.cam_to_world[:, 1],
        fhw,
        fhw,
        normal1=batch.normal[:, 0],
        normal2=batch.normal[:, 1],
        flipped1=batch.flipped[:, 0],
        flipped2=batch.flipped[:, 1],
    )
    agree, count = _instance_agreement({"instance": batch.instance}, n, (64, 64), fhw)
    assert count > 200
    assert agree > 0.95, agree
