"""Can the renderer feed training? Pairs per second the scene stream delivers against what a step consumes.

Builds one `Trainer` on ``data.stream`` (the training path itself: N render worker processes,
shared-memory slots, the copy into the batch) and measures, on the same device:

1. ``startup_s``: from building the trainer (the workers start, each builds its scene sampler,
   physics and GL context) to the first batch delivered;
2. ``consumed_pairs_per_s``: view pairs per second that a training step consumes when its data is
   free: augmentation on the device plus forward, backward and optimiser step of
   ``synthetic_contrast`` (contrast and the depth/normal/contour heads; the photo terms are off, as
   they need a photo folder), on one batch taken from the stream, device synchronised;
3. ``delivered_pairs_per_s``: view pairs per second the stream delivers in the steady state (the
   ring of slots drained first, then ``--steps`` batches timed by the wall clock) while the trainer
   does nothing else; ``per_worker_pairs_per_s`` = delivered / workers.

and from them ``gpu_idle_fraction`` = max(0, 1 - delivered / consumed), the share of the time
the device would wait for scenes, and ``workers_needed`` = consumed / per-worker delivered rate,
the render workers (each one CPU core) one training process needs to never wait.

    python bench/bench_stream.py --device cuda --workers 14            # the GPU machine, 128 px, batch 256
    python bench/bench_stream.py --device cpu --size 64 --batch 16 --workers 2 --steps 4
    python bench/bench_stream.py --quick                               # tiny: a dry run in seconds

The scenes are those of ``--render`` (a shipped render config or a YAML file; default ``demo``)
with ``size`` set to ``--size`` and any ``--render-set key=value``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

#: What --quick sets: 32 px scenes without physics, 4 pairs per step, 2 timed batches.
QUICK = {"size": 32, "batch": 4, "steps": 2, "warmup": 1, "render_set": ["physics.enabled=false"]}


def fail(msg: str, code: int = 2) -> int:
    print(f"bench_stream: error: {msg}", file=sys.stderr)
    return code


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--render", default="demo", help="render config: a shipped name or a YAML file (default demo)")
    p.add_argument(
        "--render-set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="render config overrides"
    )
    p.add_argument("--workers", type=int, default=2, help="render worker processes (default 2)")
    p.add_argument("--size", type=int, default=128, help="rendered and training resolution in px (default 128)")
    p.add_argument("--batch", type=int, default=256, help="view pairs per step (default 256)")
    p.add_argument("--steps", type=int, default=10, help="batches timed for each rate (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed training steps and batches first (default 2)")
    p.add_argument("--arch", default="resnet18", help="backbone (default resnet18)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true", help="the model in channels_last memory format")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads of the trainer (0 = torch's default)")
    p.add_argument("--quick", action="store_true", help=f"tiny settings for a dry run: {QUICK}")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value if key != "render_set" else [*value, *args.render_set])
    return args


def overrides(args: argparse.Namespace, out: Path) -> list[str]:
    """The train-ssl overrides of the measured trainer."""
    stream_set = [f"size={args.size}", *args.render_set]
    items: dict[str, Any] = {
        "data.stream": args.render,
        "data.stream_set": "[" + ",".join(stream_set) + "]",
        "data.stream_workers": args.workers,
        "data.image_size": args.size,
        "data.batch_size": args.batch,
        "data.workers": 0,
        "model.arch": args.arch,
        "model.channels_last": str(args.channels_last).lower(),
        "method.name": "synthetic_contrast",
        "method.synthetic.adversarial": "none",
        "method.photo_decorrelation_weight": 0,
        "train.device": args.device,
        "train.precision": args.precision,
        "train.steps": 10**6,
        "train.out": str(out),
        "log.tensorboard": "false",
        "log.progress": "false",
    }
    return [f"{k}={v}" for k, v in items.items()]


def measure(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch

    from synthssl.train.config import load_config
    from synthssl.train.trainer import Trainer

    def sync() -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)

    cfg = load_config(None, overrides(args, out))
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    try:
        data, stream = trainer.data, trainer.data.stream
        raw, _ = data.next_raw()
        startup = time.perf_counter() - t0
        trainer.method.train()

        def train_step(step: int) -> None:
            batch, _ = data.augment(raw, None, step)
            trainer.train_step(batch, step)

        for step in range(args.warmup):
            train_step(step)
        sync()
        t = time.perf_counter()
        for step in range(args.warmup, args.warmup + args.steps):
            train_step(step)
        sync()
        consumed = args.steps * args.batch / (time.perf_counter() - t)

        # The ring holds scenes rendered while the steps above ran: drain it, then time the steady state.
        for _ in range(math.ceil(stream.slots / args.batch) + args.warmup):
            data.next_raw()
        t = time.perf_counter()
        for _ in range(args.steps):
            data.next_raw()
        delivered = args.steps * args.batch / (time.perf_counter() - t)
        info = stream.info
    finally:
        trainer.data.close()
    per_worker = delivered / args.workers
    return {
        "device": str(trainer.device),
        "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[trainer.amp_dtype],
        "arch": args.arch,
        "size": args.size,
        "batch": args.batch,
        "workers": args.workers,
        "render": args.render,
        "render_set": [f"size={args.size}", *args.render_set],
        "physics": info.physics,
        "steps": args.steps,
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "startup_s": round(startup, 3),
        "delivered_pairs_per_s": round(delivered, 3),
        "per_worker_pairs_per_s": round(per_worker, 3),
        "consumed_pairs_per_s": round(consumed, 3),
        "gpu_idle_fraction": round(max(0.0, 1.0 - delivered / consumed), 4),
        "workers_needed": round(consumed / per_worker, 2),
    }


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    for name in ("workers", "size", "batch", "steps"):
        if getattr(args, name) < 1:
            return fail(f"--{name}: expected a whole number >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        return fail(f"--warmup: expected a whole number >= 0, got {args.warmup}")
    if args.batch < 2:
        return fail(f"--batch: expected >= 2 view pairs (contrastive negatives), got {args.batch}")
    for item in args.render_set:
        if "=" not in item:
            return fail(f"--render-set {item!r}: expected key=value")
    import torch

    from synthssl.train.config import ConfigError
    from synthssl.train.data.stream import RenderStreamError

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out = Path(tempfile.mkdtemp(prefix="bench_stream_"))
    try:
        result = measure(args, out)
    except ConfigError as exc:
        return fail(str(exc))
    except RenderStreamError as exc:
        return fail(str(exc), 1)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
