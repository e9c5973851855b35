"""Two gloo processes holding half a batch each == one process holding all of it.

Checks the pixel level (negatives gathered across ranks) and the semantic level
(k-means / prototypes over the gathered batch + supervised contrast) of DSC: the
rank-average of the losses equals the single-process loss, and each rank's input
gradient divided by the world size (what the trainer's gradient averaging does) equals
the single-process gradient of its slice. Then the whole DSC method (BatchNorm in eval
mode, so that per-rank statistics do not differ by design): rank-averaged parameter
gradients equal the single-process ones.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from synthssl.train.clustering.pseudo_labels import KMeansLabeler, PrototypeLabeler
from synthssl.train.losses.pixel_contrast import pixel_contrast_loss
from synthssl.train.losses.semantic_contrast import semantic_contrast_loss
from synthssl.train.neighbours.dense_neighbours import DenseNeighbours
from synthssl.train.neighbours.feature_neighbours import feature_neighbours

pytestmark = [pytest.mark.ddp, pytest.mark.slow]

B, D, N = 6, 16, 9


def _data():
    g = torch.Generator().manual_seed(0)
    e1, e2 = torch.randn(B, D, N, generator=g), torch.randn(B, D, N, generator=g)
    f = torch.randn(B, 8, 3, 3, generator=g)
    n = feature_neighbours(f, f + 0.5 * torch.randn(f.shape, generator=g), k=2)
    return e1, e2, n


def _terms(e1, e2, n):
    pix = pixel_contrast_loss(e1, e2, n, num_samples=N, temperature=0.2)
    dense = torch.cat([e1, e2])  # [2B, D, N]
    flat = dense.detach().transpose(1, 2).reshape(-1, D)
    labels, _ = KMeansLabeler(D, num_clusters=4)(flat, seed=3)
    sem = semantic_contrast_loss(dense, labels.reshape(2 * e1.shape[0], N), num_samples=N, temperature=0.1)
    torch.manual_seed(5)  # same prototypes everywhere
    protos = PrototypeLabeler(D, num_clusters=4)
    plabels, codes, _ = protos(flat)
    sem = sem + semantic_contrast_loss(dense, plabels.reshape(2 * e1.shape[0], N), num_samples=N)
    pix = pix + protos.prototype_loss(dense.transpose(1, 2).reshape(-1, D), codes).mean()
    return pix, sem


def _worker(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        e1, e2, n = _data()
        part = slice(rank * B // world, (rank + 1) * B // world)
        x1, x2 = e1[part].clone().requires_grad_(), e2[part].clone().requires_grad_()
        pix, sem = _terms(x1, x2, DenseNeighbours(n.mask[part], n.partner[part]))
        (pix + sem).backward()
        method, batch = _method_and_batch()
        half = batch.batch_size // world
        loss, grads = _method_grads(method, batch.slice(rank * half, (rank + 1) * half))
        dist.all_reduce(grads)  # what the trainer does, then / world
        torch.save(
            {
                "pix": pix.detach(),
                "sem": sem.detach(),
                "g1": x1.grad,
                "g2": x2.grad,
                "loss": loss,
                "grads": grads / world,
            },
            f"{out}.{rank}",
        )
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    """What each of 2 gloo ranks computed on its half of the batch."""
    tmp = tmp_path_factory.mktemp("gloo")
    world = 2
    mp.spawn(_worker, args=(world, str(tmp / "store"), str(tmp / "out")), nprocs=world, join=True)
    return [torch.load(f"{tmp / 'out'}.{r}") for r in range(world)]


def test_dense_losses_two_gloo_processes_equal_one(rank_results):
    parts, world = rank_results, len(rank_results)

    e1, e2, n = _data()
    x1, x2 = e1.clone().requires_grad_(), e2.clone().requires_grad_()
    pix, sem = _terms(x1, x2, n)
    (pix + sem).backward()

    assert torch.allclose(sum(p["pix"] for p in parts) / world, pix, atol=1e-5)
    assert torch.allclose(sum(p["sem"] for p in parts) / world, sem, atol=1e-5)
    g1 = torch.cat([p["g1"] for p in parts]) / world
    g2 = torch.cat([p["g2"] for p in parts]) / world
    assert torch.allclose(g1, x1.grad, atol=1e-6) and torch.allclose(g2, x2.grad, atol=1e-6)
    assert x1.grad.abs().sum() > 0


def _method_and_batch():
    from helpers import raycast

    from synthssl.train.config import AugmentConfig
    from synthssl.train.data.augment import augment_scenes
    from synthssl.train.methods.base import MethodContext
    from synthssl.train.methods.dsc import DSC, DSCConfig
    from synthssl.train.methods.projection_config import ProjectionConfig

    torch.manual_seed(0)
    method = DSC(
        DSCConfig(
            semantic_warmup_steps=0,
            num_clusters=4,
            pixel_samples=16,
            semantic_samples=16,
            projection=ProjectionConfig(hidden_dim=64),
            dense_hidden_dim=64,
        ),
        MethodContext(small_stem=True),
    ).eval()
    batch = augment_scenes(
        raycast.raw_scene_batch(4, 32, seed=7), AugmentConfig(), 24, torch.Generator().manual_seed(0)
    )
    return method, batch


def _method_grads(method, batch) -> tuple[torch.Tensor, torch.Tensor]:
    from synthssl.train.methods.base import StepInfo

    out = method(batch, StepInfo(0, 10))
    out["loss"].backward()
    grads = torch.cat([p.grad.flatten() for p in method.parameters() if p.grad is not None])
    return out["loss"].detach(), grads


def test_dsc_method_two_gloo_processes_equal_one(rank_results):
    parts, world = rank_results, len(rank_results)
    method, batch = _method_and_batch()
    loss, grads = _method_grads(method, batch)
    assert torch.allclose(sum(p["loss"] for p in parts) / world, loss, atol=1e-4)
    assert torch.allclose(parts[0]["grads"], grads, atol=1e-5, rtol=1e-3)
    assert grads.abs().sum() > 0
