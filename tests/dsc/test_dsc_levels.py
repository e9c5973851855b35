"""The DSC method: levels prefer semantic features, batch-order invariance, mixed precision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import raycast

from synthssl.core.config import build
from synthssl.train.config import AugmentConfig, ConfigError
from synthssl.train.data.augment import augment_scenes
from synthssl.train.methods.base import DataNeeds, MethodContext, StepInfo
from synthssl.train.methods.dsc import DSC, DSCConfig
from synthssl.train.neighbours.dense_correspondence import geometric_neighbours
from synthssl.train.neighbours.dense_neighbours import DenseNeighbours, location_pixels

FEATURE_HW = (8, 8)


@pytest.fixture(scope="module")
def scene_batch():
    raw = raycast.raw_scene_batch(8, 96, seed=4)
    return augment_scenes(raw, AugmentConfig(crop_scale=[0.5, 1.0]), 64, torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def small_batch():
    raw = raycast.raw_scene_batch(4, 48, seed=5)
    return augment_scenes(raw, AugmentConfig(crop_scale=[0.5, 1.0]), 32, torch.Generator().manual_seed(1))


def _neighbours(b):
    return geometric_neighbours(
        b.depth[:, 0],
        b.intrinsics[:, 0],
        b.cam_to_world[:, 0],
        b.depth[:, 1],
        b.intrinsics[:, 1],
        b.cam_to_world[:, 1],
        FEATURE_HW,
        FEATURE_HW,
    )


def _one_hot_embeddings(b, dim=16):
    """Dense [B,V,dim,8,8] one-hot instance ids at the location pixels; z = their mean."""
    pix = location_pixels((64, 64), FEATURE_HW)
    ids = b.instance[:, :, pix[:, 1], pix[:, 0]].clamp_max(dim - 1)  # [B, V, N]
    dense = F.one_hot(ids, dim).float().permute(0, 1, 3, 2).reshape(*ids.shape[:2], dim, *FEATURE_HW)
    return dense.mean(dim=(3, 4)), dense


def _dsc(**kw):
    cfg = build(
        DSCConfig, dict(semantic_warmup_steps=0, num_clusters=8, pixel_samples=64, semantic_samples=64, **kw), "method"
    )
    return DSC(cfg, MethodContext(small_stem=True))


def test_one_hot_instance_features_beat_random_features(scene_batch):
    method = _dsc(dense_dim=16)
    n = _neighbours(scene_batch)
    z, dense = _one_hot_embeddings(scene_batch)
    g = torch.Generator().manual_seed(0)
    z_rand, dense_rand = torch.randn(z.shape, generator=g), torch.randn(dense.shape, generator=g)
    good = method.level_losses(z, dense, dense, n, StepInfo(0, 10))
    bad = method.level_losses(z_rand, dense_rand, dense_rand, n, StepInfo(0, 10))
    for term in ("pixel", "semantic", "loss"):
        assert good[term] < bad[term] - 0.5, (term, float(good[term]), float(bad[term]))


def test_dsc_losses_are_invariant_to_permuting_the_batch(scene_batch):
    method = _dsc(dense_dim=32)
    n = _neighbours(scene_batch)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(8, 2, 32, generator=g)
    dense = torch.randn(8, 2, 32, *FEATURE_HW, generator=g)
    perm = torch.randperm(8, generator=g)
    a = method.level_losses(z, dense, dense, n, StepInfo(0, 10))
    method = _dsc(dense_dim=32)  # fresh k-means state
    b = method.level_losses(
        z[perm], dense[perm], dense[perm], DenseNeighbours(n.mask[perm], n.partner[perm]), StepInfo(0, 10)
    )
    for term in ("instance", "pixel", "semantic", "loss"):
        assert torch.allclose(a[term], b[term], atol=1e-5), term


@pytest.mark.parametrize(
    "device", [pytest.param("cpu", marks=pytest.mark.slow), pytest.param("cuda", marks=pytest.mark.gpu)]
)
@pytest.mark.parametrize("kw", [{}, {"semantic": "prototypes", "neighbours": "feature", "target_momentum": 0.9}])
def test_dsc_gradients_are_finite_under_bf16_autocast(small_batch, kw, device):
    """bf16 autocast as the trainer runs it on a GPU (``train.precision: auto``); on a CPU it is emulated (slow)."""
    method = _dsc(**kw).to(device)
    with torch.autocast(device, dtype=torch.bfloat16):
        out = method(small_batch.to(device), StepInfo(0, 10))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    grads = [p.grad for p in method.parameters() if p.grad is not None]
    assert len(grads) > 50 and all(torch.isfinite(g).all() for g in grads)
    assert method.encoder.trunk.conv1.weight.grad.abs().sum() > 0
    method.after_optimizer_step(StepInfo(0, 10))


def test_semantic_term_waits_for_its_warm_up(small_batch):
    method = DSC(DSCConfig(semantic_warmup_steps=5, num_clusters=8), MethodContext(small_stem=True))
    with torch.no_grad():
        early = method(small_batch, StepInfo(4, 10))
        late = method(small_batch, StepInfo(5, 10))
    assert "semantic" not in early and float(early["semantic_weight"]) == 0.0
    assert float(late["semantic_weight"]) == 1.0 and torch.isfinite(late["semantic"])
    assert torch.allclose(late["loss"], late["instance"] + late["pixel"] + late["semantic"])


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="method.num_clusters: expected >= 2, got 1"):
        build(DSCConfig, {"num_clusters": 1}, "method")
    with pytest.raises(ConfigError, match="method.synthetic.disc_lr: expected > 0"):
        build(DSCConfig, {"synthetic": {"disc_lr": 0}}, "method")


def test_data_needs_come_from_the_config_alone():
    """What data DSC needs is read off its config, before any module is built."""
    assert build(DSCConfig, {}).data_needs() == DataNeeds(geometry=True)
    assert build(DSCConfig, {"neighbours": "crop"}).data_needs() == DataNeeds(two_crops=True)
    assert build(DSCConfig, {"neighbours": "feature"}).data_needs() == DataNeeds()
    needs = build(DSCConfig, {"neighbours": "feature", "synthetic": {"property_weight": 1.0, "adversarial": "gan"}})
    assert needs.data_needs() == DataNeeds(geometry=True, real=True, real_off=("method.synthetic.adversarial=none",))
    needs = build(DSCConfig, {"neighbours": "feature", "photo_decorrelation_weight": 10.0})
    assert needs.data_needs() == DataNeeds(real=True, real_off=("method.photo_decorrelation_weight=0",), real_min=2)
    assert build(DSCConfig, {"neighbours": "feature", "decorrelation_weight": 10.0}).data_needs() == DataNeeds()


def test_decorrelation_terms_add_their_weighted_losses_on_pooled_c5(small_batch):
    """loss = the levels + w x decorrelation(synthetic pooled c5) + w_photo x decorrelation(photos' pooled c5)."""
    from synthssl.train.losses.decorrelation import decorrelation_loss
    from synthssl.train.models.backbone import pooled

    method = _dsc(decorrelation_weight=2.0, photo_decorrelation_weight=3.0)
    batch = small_batch.replace(real=torch.randn(4, 3, 32, 32))
    with torch.no_grad():
        out = method(batch, StepInfo(0, 10))
    with torch.no_grad():
        x = torch.cat([batch.rgb.flatten(0, 1), batch.real], 0)
        c5 = pooled(method.encoder(x)[-1])
    n = batch.rgb.shape[0] * 2
    torch.testing.assert_close(out["decorrelation"], decorrelation_loss(c5[:n]))
    torch.testing.assert_close(out["photo_decorrelation"], decorrelation_loss(c5[n:]))
    levels = out["instance"] + out["pixel"] + out["semantic"]
    torch.testing.assert_close(out["loss"], levels + 2.0 * out["decorrelation"] + 3.0 * out["photo_decorrelation"])


@pytest.mark.parametrize("adversarial", ["gan", "dann"])
def test_dsc_combines_with_the_synthetic_terms(small_batch, adversarial):
    method = _dsc(synthetic={"property_weight": 1.0, "adversarial": adversarial, "disc_width": 16})
    batch = small_batch.replace(real=torch.randn(4, 3, 32, 32))
    out = method(batch, StepInfo(0, 10))
    levels = out["instance"] + out["pixel"] + out["semantic"]
    synthetic = out["depth"] + out["normal"] + out["contour"] + 0.1 * out["adv"]
    assert torch.allclose(out["loss"], levels + synthetic, atol=1e-5)
    assert method.cfg.data_needs().geometry and method.cfg.data_needs().real
    extras = method.extra_optimizers()
    assert (len(extras) == 1 and extras[0].loss_key == "disc_loss") if adversarial == "gan" else not extras


def test_each_level_falls_when_its_embeddings_are_optimised(scene_batch):
    """Gradients reach every level: optimising free embeddings lowers all three terms."""
    method = _dsc(dense_dim=16)
    n = _neighbours(scene_batch)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(8, 2, 16, generator=g).requires_grad_()
    dense = torch.randn(8, 2, 16, *FEATURE_HW, generator=g).requires_grad_()
    opt = torch.optim.Adam([z, dense], lr=0.05)
    history = []
    for step in range(30):
        out = method.level_losses(z, dense, dense.detach(), n, StepInfo(step, 30))
        history.append({k: float(out[k].detach()) for k in ("instance", "pixel", "semantic")})
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    for term in ("instance", "pixel", "semantic"):
        assert history[-1][term] < 0.8 * history[0][term], (term, history[0][term], history[-1][term])


@pytest.mark.parametrize("semantic", ["kmeans", "prototypes"])
def test_semantic_level_is_semantic_contrast_loss_as_the_inline_code_was(semantic):
    """DSC's L_sem comes from `semantic_contrast_loss`, with exactly the numbers of the former inline code."""
    import copy

    from synthssl.train.clustering.pseudo_labels import KMeansLabeler
    from synthssl.train.distributed import global_mean
    from synthssl.train.losses.semantic_contrast import sampled_pixels
    from synthssl.train.losses.supcon import supcon_loss

    method = DSC(
        DSCConfig(semantic_warmup_steps=0, num_clusters=4, semantic=semantic, semantic_samples=5),
        MethodContext(small_stem=True),
    )
    g = torch.Generator().manual_seed(2)
    e = torch.randn(4, 128, 12, generator=g)  # [M, D, N], dense_dim 128
    targets = torch.randn(2, 2, 128, 3, 4, generator=g)
    labeler = copy.deepcopy(method.labeler)
    step = StepInfo(step=3, total_steps=10)
    torch.manual_seed(11)
    got = method._semantic(e, targets, step)
    # the former inline code of dsc.py
    torch.manual_seed(11)
    M, D, N = e.shape
    t = targets.flatten(0, 1).flatten(2).float().transpose(1, 2).reshape(M * N, D)
    pix, rows = sampled_pixels(e, 5)
    if isinstance(labeler, KMeansLabeler):
        labels, _ = labeler(t, seed=step.step)
        expect = supcon_loss(pix, labels[rows], 0.1)
    else:
        labels, codes, _ = labeler(t)
        proto = global_mean(labeler.prototype_loss(pix, codes[rows]), torch.ones(pix.shape[0], dtype=torch.bool))
        expect = supcon_loss(pix, labels[rows], 0.1) + proto
    assert torch.equal(got["semantic"], expect)
