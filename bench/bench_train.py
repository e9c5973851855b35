"""Throughput of a full synthssl training step against the bare backbone, in one run.

Three measurements on the same device, batch, resolution and precision:

1. ``backbone_images_per_s``: forward + backward + SGD step of the bare torchvision
   ResNet on random images already on the device (the ceiling of the
   the GPU target of a training/backbone ratio >= 0.7), batch = 2 x batch view images.
2. ``train_images_per_s``: full training steps of ``synthetic_contrast`` with every
   objective on (contrast, depth/normal/contour, GAN adaptation against real photos),
   data read from shards by the real DataLoader, augmented on the device: exactly
   `Trainer.fit_step`. Images = the 2 x batch rendered views per step (the extra
   ``real_batch`` photos for adaptation are work on top, not counted).
3. ``loader_images_per_s``: the DataLoader alone (workers reading uint8/float16
   arrays from the shards and collating), in view images per second; it must exceed
   (2).

``ratio`` = train / backbone (target on a GPU: >= 0.7). Backbone and training steps
are timed in interleaved rounds (medians reported), so a busy machine slows both alike.

    python bench/bench_train.py                                  # small CPU settings
    python bench/bench_train.py --device cuda --arch resnet18 --size 128 --batch 256 \\
        --real-batch 64 --workers 14 --steps 30 --channels-last  # GPU

Without ``--shards`` it writes analytic shards (spheres on a floor, exact geometry)
into a temporary folder; without ``--photos`` it uses /usr/share/backgrounds when
present, else random-texture images. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_shards(directory: Path, scenes: int, size: int) -> Path:
    """Write analytic test scenes (exact geometry) as shards into `directory`."""
    sys.path.insert(0, str(ROOT / "tests"))  # the tests' helpers package
    from helpers.analytic_scene import write_shards

    write_shards(directory, num_scenes=scenes, shard_size=max(1, min(256, scenes)), size=size)
    return directory


def make_photos(directory: Path, count: int = 16) -> Path:
    """Write `count` smooth random-texture 640x480 JPEGs."""
    import cv2

    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        base = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        cv2.imwrite(str(directory / f"p{i}.jpg"), cv2.resize(base, (640, 480), interpolation=cv2.INTER_CUBIC))
    return directory


def backbone_step_fn(
    arch: str,
    small_stem: bool,
    batch: int,
    size: int,
    device: torch.device,
    amp: torch.dtype | None,
    channels_last: bool,
    compile_: bool,
):
    """A closure running forward + backward + SGD step of the bare ResNet on random images."""
    from synthssl.train.models.backbone import build_backbone

    model = build_backbone(arch, small_stem).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    fn = torch.compile(model) if compile_ else model

    def step(_: int) -> None:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = fn(x).float().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def timed(step, start: int, count: int, device: torch.device) -> float:
    """Seconds for `count` calls step(start), step(start+1), ..."""
    _sync(device)
    t = time.perf_counter()
    for i in range(start, start + count):
        step(i)
    _sync(device)
    return time.perf_counter() - t


def bench_loader(trainer, batches: int, views_per_batch: int) -> float:
    """View images per second delivered by the trainer's DataLoaders alone."""
    data = trainer.data
    for _ in range(2):
        data.next_raw()
    t = time.perf_counter()
    for _ in range(batches):
        data.next_raw()
    return batches * views_per_batch / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print the JSON object."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", type=Path, help="shard directory (default: write analytic shards)")
    p.add_argument("--photos", type=Path, help="real photo folder (default: /usr/share/backgrounds or generated)")
    p.add_argument("--scenes", type=int, default=64, help="analytic scenes to write when --shards is not given")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--small-stem", action="store_true")
    p.add_argument("--size", type=int, default=64, help="training resolution (px)")
    p.add_argument("--batch", type=int, default=16, help="view pairs per step")
    p.add_argument("--real-batch", type=int, default=0, help="real photos per step (0 = batch / 4)")
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from synthssl.train.config import ConfigError, load_config
    from synthssl.train.device import resolve_device, resolve_precision
    from synthssl.train.trainer import Trainer

    try:
        device = resolve_device(args.device, "--device")
    except ConfigError as exc:
        print(f"bench_train: error: {exc}", file=sys.stderr)
        return 2
    amp = resolve_precision(args.precision, device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    shards = args.shards or make_shards(
        tmp / "shards", args.scenes, max(args.size, 64) if args.size <= 64 else args.size
    )
    photos = args.photos
    if photos is None:
        photos = Path("/usr/share/backgrounds") if Path("/usr/share/backgrounds").is_dir() else make_photos(tmp / "p")
    real_batch = args.real_batch or max(2, args.batch // 4)
    overrides = {
        "data.shards": f"[{shards}]",
        "data.photos": str(photos),
        "data.image_size": args.size,
        "data.batch_size": args.batch,
        "data.real_batch_size": real_batch,
        "data.workers": args.workers,
        "model.arch": args.arch,
        "model.small_stem": args.small_stem,
        "model.channels_last": args.channels_last,
        "method.name": "synthetic_contrast",
        "method.synthetic.adversarial": "gan",
        "train.device": str(device),
        "train.precision": args.precision,
        "train.compile": args.compile,
        "train.steps": 10**6,
        "train.out": str(tmp / "run"),
        "log.tensorboard": False,
        "log.progress": False,
        "optim.name": "sgd",
        "optim.lr": 0.01,
    }
    cfg = load_config(None, [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in overrides.items()])
    trainer = Trainer(cfg)
    views = 2 * args.batch
    backbone_step = backbone_step_fn(
        args.arch, args.small_stem, views, args.size, device, amp, args.channels_last, args.compile
    )
    trainer.method.train()
    step = 0
    for _ in range(args.warmup):
        backbone_step(0)
        trainer.fit_step(step)
        step += 1
    # Interleaved rounds (backbone, then training) so that a busy machine slows both alike;
    # the median round of each is reported.
    backbone_rates, train_rates = [], []
    for _ in range(args.rounds):
        backbone_rates.append(args.steps * views / timed(backbone_step, 0, args.steps, device))
        train_rates.append(args.steps * views / timed(trainer.fit_step, step, args.steps, device))
        step += args.steps
    backbone, train = statistics.median(backbone_rates), statistics.median(train_rates)
    loader = bench_loader(trainer, max(args.steps, 5), views)
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "torch_threads": torch.get_num_threads(),
                "arch": args.arch,
                "small_stem": args.small_stem,
                "image_size": args.size,
                "batch_pairs": args.batch,
                "view_images_per_step": views,
                "real_images_per_step": real_batch,
                "precision": str(amp).replace("torch.", "") if amp is not None else "fp32",
                "channels_last": args.channels_last,
                "compile": args.compile,
                "workers": args.workers,
                "steps_per_round": args.steps,
                "rounds": args.rounds,
                "shard_resolution": trainer.data.scenes.height,
                "backbone_images_per_s": round(backbone, 2),
                "train_images_per_s": round(train, 2),
                "ratio": round(train / backbone, 3),
                "ratio_per_round": [round(t / b, 3) for t, b in zip(train_rates, backbone_rates)],
                "loader_images_per_s": round(loader, 2),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
