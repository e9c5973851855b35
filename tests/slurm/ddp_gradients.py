"""The two-process property of tests/train/test_train_ddp.py, with the rendezvous taken from SLURM.

``srun -n 2 env PYTHONPATH=tests python tests/slurm/ddp_gradients.py SHARDS PHOTOS OUT``: each task joins the gloo
process group through `synthssl.train.distributed.init_from_env` (RANK, WORLD_SIZE, MASTER_ADDR
and MASTER_PORT from SLURM's variables: nothing is set by hand), computes the loss terms and
parameter gradients of its half of a fixed global batch of 8 pairs (`gradients`), and rank 0
saves them, with the rendezvous it saw, to OUT/ddp.pt. The test calls `gradients` in one process
on the whole batch and compares.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from helpers.train_overrides import tiny_overrides  # tests/ is on PYTHONPATH (pytest's pythonpath, or srun's env)

from synthssl.train.config import AugmentConfig, load_config
from synthssl.train.data.augment import augment_scenes
from synthssl.train.data.scenes import SceneDataset
from synthssl.train.methods.base import StepInfo

GLOBAL_BATCH = 8


def gradients(shard_dir: str, photo_dir: str, out: str) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """({loss term: value averaged over ranks}, {parameter: gradient averaged over ranks}) of step 3 of
    10 on this rank's slice of the first 8 scenes (augmentation seed 1, as tests/train/test_train_ddp.py)."""
    from synthssl.train import distributed as du
    from synthssl.train.trainer import Trainer

    overrides = {"data.batch_size": GLOBAL_BATCH, "data.real_batch_size": GLOBAL_BATCH}
    cfg = load_config(
        None,
        tiny_overrides(
            Path(shard_dir), Path(photo_dir), Path(out), **overrides, **{"method.synthetic.adversarial": "gan"}
        ),
    )
    trainer = Trainer(cfg)
    data = SceneDataset([shard_dir])
    items = [data[i] for i in range(GLOBAL_BATCH)]
    raw = {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}
    batch = augment_scenes(raw, AugmentConfig(), 32, torch.Generator().manual_seed(1))
    batch.real = torch.randn(GLOBAL_BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    world, rank = du.world_size(), du.rank()
    local = GLOBAL_BATCH // world
    part = batch.slice(rank * local, (rank + 1) * local)
    part.real = batch.real[rank * local : (rank + 1) * local]
    terms = trainer.compute_gradients(part, StepInfo(3, 10))
    keys = sorted(terms)
    mean = du.all_reduce_mean(torch.stack([terms[k].float() for k in keys]))
    grads = {n: p.grad.clone() for n, p in trainer.method.named_parameters() if p.grad is not None}
    return dict(zip(keys, mean.tolist())), grads


def main(shard_dir: str, photo_dir: str, out: str) -> None:
    from synthssl.train import distributed as du

    torch.set_num_threads(1)
    assert du.init_from_env(backend="gloo"), "not distributed: srun -n 2 expected"
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_JOB_ID")
    seen = {k: os.environ[k] for k in names}
    try:
        terms, grads = gradients(shard_dir, photo_dir, f"{out}/rank{du.rank()}")
        if du.rank() == 0:
            torch.save({"terms": terms, "grads": grads, "rendezvous": seen}, f"{out}/ddp.pt")
    finally:
        du.cleanup()


if __name__ == "__main__":
    main(*sys.argv[1:4])
