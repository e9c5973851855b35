"""Losses and building blocks of the DSC levels: properties that matter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synthssl.train.clustering.kmeans import cluster_statistics, spherical_kmeans
from synthssl.train.clustering.pseudo_labels import KMeansLabeler, PrototypeLabeler
from synthssl.train.clustering.sinkhorn import sinkhorn
from synthssl.train.losses.dense_infonce import block_positive_info_nce, multi_positive_info_nce
from synthssl.train.losses.pixel_contrast import pixel_contrast_loss, sample_locations
from synthssl.train.losses.queue_infonce import queue_info_nce, symmetric_queue_info_nce
from synthssl.train.losses.supcon import supcon_loss
from synthssl.train.momentum.feature_queue import FeatureQueue
from synthssl.train.momentum.momentum import ema_update, momentum_copy, momentum_schedule
from synthssl.train.neighbours.dense_neighbours import DenseNeighbours
from synthssl.train.neighbours.feature_neighbours import feature_neighbours


def test_multi_positive_reduces_to_infonce_with_one_positive():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    loss, counted = multi_positive_info_nce(q, k, torch.eye(6, dtype=torch.bool), 0.3)
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).t() / 0.3
    assert counted.all()
    assert torch.allclose(loss, F.cross_entropy(logits, torch.arange(6), reduction="none"), atol=1e-5)


def test_multi_positive_ignores_invalid_keys_and_excluded_pairs():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g)
    pos = torch.zeros(4, 6, dtype=torch.bool)
    pos[torch.arange(4), torch.arange(4)] = True
    key_valid = torch.tensor([True, True, True, True, False, False])
    a, _ = multi_positive_info_nce(q, k, pos, 0.2, key_valid=key_valid)
    b, _ = multi_positive_info_nce(q, k[:4], pos[:, :4], 0.2)
    assert torch.allclose(a, b, atol=1e-5)
    excl = torch.zeros(4, 6, dtype=torch.bool)
    excl[:, 4:] = True
    c, _ = multi_positive_info_nce(q, k, pos, 0.2, exclude=excl)
    assert torch.allclose(a, c, atol=1e-5)


def test_block_positive_form_equals_the_dense_form():
    g = torch.Generator().manual_seed(9)
    B, S, D = 3, 5, 8
    q, k = torch.randn(B, S, D, generator=g), torch.randn(B, S, D, generator=g)
    pos = torch.rand(B, S, S, generator=g) < 0.3
    valid = torch.rand(B, S, generator=g) < 0.8
    dense_pos = torch.zeros(B, S, B, S, dtype=torch.bool)
    dense_pos[torch.arange(B), :, torch.arange(B), :] = pos
    a, ca = block_positive_info_nce(
        q, k, pos, k.reshape(-1, D), 0.2, query_valid=valid, own_key_valid=valid, all_key_valid=valid.reshape(-1)
    )
    b, cb = multi_positive_info_nce(
        q.reshape(-1, D),
        k.reshape(-1, D),
        dense_pos.reshape(B * S, B * S),
        0.2,
        query_valid=valid.reshape(-1),
        key_valid=valid.reshape(-1),
    )
    assert torch.equal(ca, cb) and ca.any()
    assert torch.allclose(a[ca], b[cb], atol=1e-5)


def _neighbours_identity(B, N):
    mask = torch.eye(N, dtype=torch.bool).expand(B, N, N).clone()
    return DenseNeighbours(mask=mask, partner=torch.arange(N).expand(B, N).clone())


def test_pixel_contrast_is_invariant_to_batch_permutation():
    g = torch.Generator().manual_seed(2)
    B, D, N = 5, 16, 9
    e1, e2 = torch.randn(B, D, N, generator=g), torch.randn(B, D, N, generator=g)
    f = torch.randn(B, 8, 3, 3, generator=g)
    n = feature_neighbours(f, f + 0.3 * torch.randn(f.shape, generator=g), k=2)
    perm = torch.randperm(B, generator=g)
    a = pixel_contrast_loss(e1, e2, n, num_samples=N)
    b = pixel_contrast_loss(e1[perm], e2[perm], DenseNeighbours(n.mask[perm], n.partner[perm]), num_samples=N)
    assert torch.allclose(a, b, atol=1e-5)


def test_pixel_contrast_prefers_matching_embeddings():
    g = torch.Generator().manual_seed(3)
    B, D, N = 4, 32, 16
    e1 = torch.randn(B, D, N, generator=g)
    n = _neighbours_identity(B, N)
    aligned = pixel_contrast_loss(e1, e1 + 0.05 * torch.randn(e1.shape, generator=g), n, num_samples=8)
    shuffled = pixel_contrast_loss(e1, torch.randn(B, D, N, generator=g), n, num_samples=8)
    assert aligned < 0.5 * shuffled


def test_pixel_contrast_memory_is_bounded_by_samples():
    """Only B*S x B*S similarities: loss of a huge map with few samples stays cheap and exact."""
    B, D, N = 2, 8, 4096
    n = _neighbours_identity(1, 8)
    n = DenseNeighbours(mask=torch.zeros(B, N, N, dtype=torch.bool), partner=torch.full((B, N), -1))
    n.mask[:, torch.arange(5), torch.arange(5)] = True
    n.partner[:, :5] = torch.arange(5)
    idx, valid = sample_locations(n.has_partner, 4)
    assert idx.shape == (B, 4) and valid.all() and (idx < 5).all()
    loss = pixel_contrast_loss(torch.randn(B, D, N), torch.randn(B, D, N), n, num_samples=4)
    assert torch.isfinite(loss)


def test_supcon_prefers_label_consistent_embeddings_and_is_permutation_invariant():
    g = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 4, (40,), generator=g)
    centres = torch.randn(4, 16, generator=g)
    good = centres[labels] + 0.1 * torch.randn(40, 16, generator=g)
    bad = torch.randn(40, 16, generator=g)
    assert supcon_loss(good, labels) < supcon_loss(bad, labels) - 1.0
    perm = torch.randperm(40, generator=g)
    assert torch.allclose(supcon_loss(good, labels), supcon_loss(good[perm], labels[perm]), atol=1e-5)


def test_kmeans_recovers_separated_clusters_independent_of_order():
    g = torch.Generator().manual_seed(5)
    centres = F.normalize(torch.randn(5, 32, generator=g), dim=1)
    truth = torch.arange(200) % 5
    x = centres[truth] + 0.05 * torch.randn(200, 32, generator=g)
    c = spherical_kmeans(x, 5, iterations=3, seed=0)
    # a perfect clustering: a bijection between found and true clusters
    pairs = set(zip(c.labels.tolist(), truth.tolist()))
    assert len(pairs) == 5 and len({p[0] for p in pairs}) == 5
    perm = torch.randperm(200, generator=g)
    assert torch.equal(spherical_kmeans(x[perm], 5, 3, seed=0).labels, c.labels[perm])
    stats = cluster_statistics(c.labels, 5)
    assert stats["entropy"].item() == pytest.approx(1.0) and stats["nonempty"].item() == 5


def test_kmeans_labeler_warm_starts_from_saved_centroids():
    x = F.normalize(torch.randn(100, 8), dim=1)
    lab = KMeansLabeler(8, num_clusters=4)
    labels1, _ = lab(x, seed=0)
    restored = KMeansLabeler(8, num_clusters=4)
    restored.load_state_dict(lab.state_dict())
    a, _ = lab(x, seed=1)
    b, _ = restored(x, seed=1)
    assert torch.equal(a, b)


def test_sinkhorn_balances_clusters():
    g = torch.Generator().manual_seed(6)
    scores = torch.randn(64, 8, generator=g).clamp(-1, 1)
    scores[:, 0] += 0.5  # everyone prefers prototype 0
    q = sinkhorn(scores, epsilon=0.05, iterations=3)
    assert torch.allclose(q.sum(1), torch.ones(64), atol=1e-4)
    assert q.sum(0).max() / q.sum(0).min() < 3.0  # far from all-on-one
    labels, codes, stats = PrototypeLabeler(16, num_clusters=8)(torch.randn(64, 16))
    assert codes.shape == (64, 8) and stats["nonempty"] > 4


def test_queue_is_fifo_and_saved():
    q = FeatureQueue(dim=4, size=6)
    keys = F.normalize(torch.randn(4, 4), dim=1)
    q.enqueue(keys)
    q.enqueue(keys[:3])
    assert torch.allclose(q.queue[4:6], keys[:2]) and torch.allclose(q.queue[0], keys[2])
    assert int(q.pointer) == 1 and "queue" in q.state_dict()


def test_queue_info_nce_matches_cross_entropy():
    g = torch.Generator().manual_seed(7)
    q, k, n = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g), torch.randn(5, 8, generator=g)
    loss = queue_info_nce(q, k, n, 0.2)
    qn, kn, nn_ = (F.normalize(t, dim=1) for t in (q, k, n))
    pos = (qn * kn).sum(1, keepdim=True)
    manual = -pos[:, 0] / 0.2 + torch.logsumexp(torch.cat([pos, qn @ nn_.t()], 1) / 0.2, 1)
    assert torch.allclose(loss, manual, atol=1e-5)


def test_ema_update_and_schedule():
    online = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    target = momentum_copy(online)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        online[0].weight.add_(1.0)
        online[1].running_mean.fill_(2.0)
    before = target[0].weight.clone()
    ema_update(online, target, 0.9)
    assert torch.allclose(target[0].weight, before + 0.1)
    assert torch.equal(target[1].running_mean, online[1].running_mean)
    assert momentum_schedule(0.99, 0.0, cosine=True) == pytest.approx(0.99)
    assert momentum_schedule(0.99, 1.0, cosine=True) == pytest.approx(1.0)


def test_losses_have_finite_gradients_under_bf16_autocast():
    g = torch.Generator().manual_seed(8)
    conv = nn.Conv2d(8, 16, 1)
    x1, x2 = torch.randn(4, 8, 4, 4, generator=g), torch.randn(4, 8, 4, 4, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        e1, e2 = conv(x1).flatten(2), conv(x2).flatten(2)
        n = feature_neighbours(x1, x2)
        labels, _ = KMeansLabeler(16, num_clusters=4)(torch.cat([e1, e2]).transpose(1, 2).reshape(-1, 16), 0)
        loss = pixel_contrast_loss(e1, e2, n, num_samples=8) + supcon_loss(
            torch.cat([e1, e2]).transpose(1, 2).reshape(-1, 16), labels
        )
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())


def test_symmetric_queue_info_nce_is_the_mean_of_both_directions():
    """MoCo v2 and DenseCL share one symmetrised loss: 1/2 [mean nce(q1, k1) + mean nce(q2, k2)]."""
    g = torch.Generator().manual_seed(3)
    q1, k1, q2, k2 = (torch.randn(6, 8, generator=g) for _ in range(4))
    n = torch.randn(10, 8, generator=g)
    loss = symmetric_queue_info_nce(q1, k1, q2, k2, n, 0.2)
    expect = 0.5 * (queue_info_nce(q1, k1, n, 0.2).mean() + queue_info_nce(q2, k2, n, 0.2).mean())
    assert loss.shape == () and torch.equal(loss, expect)
    swapped = symmetric_queue_info_nce(q1, k2, q2, k1, n, 0.2)  # the pairing matters
    assert not torch.allclose(loss, swapped)
