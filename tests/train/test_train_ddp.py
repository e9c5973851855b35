"""Two gloo processes on halves of a global batch == one process on the whole batch.

Covers the gathered NT-Xent negatives (with gradients), global BatchNorm, gradient
averaging, all loss terms and the discriminator's extra optimiser (GAN mode).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers.train_overrides import tiny_overrides

from synthssl.train.config import AugmentConfig, load_config
from synthssl.train.data.augment import augment_scenes
from synthssl.train.data.scenes import SceneDataset
from synthssl.train.methods.base import StepInfo

pytestmark = [pytest.mark.ddp, pytest.mark.slow]

GLOBAL_BATCH = 8


def _global_batch(shard_dir: str):
    data = SceneDataset([shard_dir])
    items = [data[i] for i in range(GLOBAL_BATCH)]
    raw = {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}
    # Augmentation seed 1: with seed 0 one c5 pre-activation of the single process is exactly 0.0
    # (layer4.1's bn2 output is -0.6950030 and its identity +0.6950030, to the last bit), i.e. on
    # ReLU's kink; the two processes' sum lands a float32 ulp off it and takes the other subgradient,
    # which moves the encoder's gradients by 0.75 %. Both are correct; a bug is off by far more.
    batch = augment_scenes(raw, AugmentConfig(), 32, torch.Generator().manual_seed(1))
    batch.real = torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return batch


def _gradients(shard_dir: str, photo_dir: str, out: str) -> tuple[float, dict[str, torch.Tensor], dict]:
    from synthssl.train import distributed as du
    from synthssl.train.trainer import Trainer

    cfg = load_config(
        None,
        tiny_overrides(
            Path(shard_dir),
            Path(photo_dir),
            Path(out),
            **{
                "data.batch_size": GLOBAL_BATCH,
                "data.real_batch_size": GLOBAL_BATCH,
                "method.synthetic.adversarial": "gan",
            },
        ),
    )
    trainer = Trainer(cfg)
    batch = _global_batch(shard_dir)
    world, rank = du.world_size(), du.rank()
    local = GLOBAL_BATCH // world
    part = batch.slice(rank * local, (rank + 1) * local)
    part.real = batch.real[rank * local : (rank + 1) * local]
    terms = trainer.compute_gradients(part, StepInfo(3, 10))
    keys = sorted(terms)
    mean = du.all_reduce_mean(torch.stack([terms[k].float() for k in keys]))
    grads = {n: p.grad.clone() for n, p in trainer.method.named_parameters() if p.grad is not None}
    return dict(zip(keys, mean.tolist())), grads, {n: p.grad is None for n, p in trainer.method.named_parameters()}


def _worker(rank: int, world: int, port: int, shard_dir: str, photo_dir: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        terms, grads, _ = _gradients(shard_dir, photo_dir, f"{out}/rank{rank}")
        if rank == 0:
            torch.save({"terms": terms, "grads": grads}, f"{out}/ddp.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(shard_dir, photo_dir, tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(shard_dir), str(photo_dir), str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt")
    terms, grads, _ = _gradients(str(shard_dir), str(photo_dir), str(tmp_path / "single"))
    for key in ("loss", "contrast", "depth", "normal", "contour", "adv", "disc_loss"):
        assert abs(ddp["terms"][key] - terms[key]) <= 1e-4 * max(1.0, abs(terms[key])), key
    assert set(ddp["grads"]) == set(grads)
    assert any(n.startswith("synthetic.discriminator.") for n in grads)
    # float32 sums in another order: compare whole tensors (a missing cross-rank gradient,
    # e.g. negatives gathered without gradients, is off by tens of percent)
    for name, g in grads.items():
        err = float((ddp["grads"][name] - g).norm())
        assert err <= 1e-3 * float(g.norm()) + 1e-7, (
            f"{name}: |ddp - single| = {err:.3g}, |single| = {float(g.norm()):.3g}"
        )
