"""Resumed runs equal uninterrupted ones: k-means centroids, momentum encoders and queues
live in buffers and come back with the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from synthssl.train.config import load_config
from synthssl.train.trainer import Trainer

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "configs"


def _cfg(name: str, shards: Path, out: Path, extra: list[str]):
    return load_config(
        CONFIGS / f"{name}.yaml",
        [
            f"data.shards=[{shards}]",
            "data.batch_size=4",
            "data.image_size=16",
            "data.workers=0",
            "model.small_stem=true",
            "model.channels_last=false",
            "train.steps=4",
            "train.checkpoint_every=2",
            "log.every=1",
            "log.tensorboard=false",
            "log.progress=false",
            "optim.warmup_steps=0",
            "train.device=cpu",
            "train.export=false",
            f"train.out={out}",
            *extra,
        ],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,extra",
    [
        (
            "dsc",
            [
                "method.semantic_warmup_steps=1",
                "method.num_clusters=8",
                "method.dense_level=c4",
                "method.target_momentum=0.9",
            ],
        ),
        ("mocov2", ["method.queue_size=24"]),
    ],
)
def test_resume_matches_uninterrupted_run(name, extra, analytic_shards, tmp_path):
    Trainer(_cfg(name, analytic_shards, tmp_path / "full", extra)).run()
    killed = _cfg(name, analytic_shards, tmp_path / "resumed", extra)
    Trainer(killed).run(stop_after=3)
    Trainer(killed, resume=True).run()
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)["method"]
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["method"]
    stateful = [k for k in full if "labeler.centroids" in k or "queue.queue" in k or "target_" in k or "key_" in k]
    assert stateful
    for key, value in full.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-6, msg=key)
    losses = [json.loads(x)["loss"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x)["loss"] for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert losses == pytest.approx(ref, rel=1e-4)
