"""Dotted overrides of a seconds-long CPU training run, shared by the trainer and predict tests."""

from __future__ import annotations

from pathlib import Path


def tiny_overrides(shard_dir: Path, photo_dir: Path, out: Path, **extra) -> list[str]:
    """Dotted overrides for a fast CPU run (32 px, standard stem, batch 4).

    The trainer's mechanics are tested on one fixed small setting, not on the recipe: AdamW at
    lr 1e-3 and, for synthetic_contrast, no photo decorrelation unless a test turns it on."""
    items = {
        "data.shards": f"[{shard_dir}]",
        "data.photos": str(photo_dir),
        "data.image_size": 32,
        "data.batch_size": 4,
        "data.workers": 0,
        "train.steps": 4,
        "train.out": str(out),
        "train.device": "cpu",
        "log.every": 1,
        "log.tensorboard": "false",
        "log.progress": "false",
        "train.checkpoint_every": 0,
        "model.channels_last": "false",
        "optim.name": "adamw",
        "optim.lr": 0.001,
        "optim.weight_decay": 0.0001,
        "method.name": "synthetic_contrast",
        "method.projection.hidden_dim": 64,
        "method.synthetic.decoder_width": 16,
        "method.synthetic.disc_width": 32,
    }
    items.update(extra)
    if items["method.name"] == "synthetic_contrast":
        items.setdefault("method.photo_decorrelation_weight", 0.0)
    return [f"{k}={v}" for k, v in items.items()]


#: The render config of the stream tests: the demo's scenes at 32 px, without physics (fast).
STREAM_RENDER = "demo"
STREAM_SET = ("size=32", "physics.enabled=false")


def stream_overrides(out: Path, workers: int = 1, **extra) -> list[str]:
    """`tiny_overrides` of a run on ``data.stream`` (`STREAM_RENDER` with `STREAM_SET`, ``workers`` render
    workers) instead of shards, with the terms that need photos off (no photo folder)."""
    items = {
        "data.shards": "[]",
        "data.photos": "null",
        "data.stream": STREAM_RENDER,
        "data.stream_set": "[" + ",".join(STREAM_SET) + "]",
        "data.stream_workers": workers,
        "method.synthetic.adversarial": "none",
        "method.photo_decorrelation_weight": 0.0,
    }
    items.update(extra)
    return tiny_overrides(Path(), Path(), out, **items)
