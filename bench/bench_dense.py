"""Step time and peak memory of DSC, DenseCL and SimCLR at the same batch and resolution.

One run measures every method on the same device, batch and image size: forward +
backward + SGD step + the method's per-step update (momentum encoders), on a
synthetic batch with exact geometry (two cameras looking at a tilted plane, so DSC's
geometric rule has real correspondences). Methods are timed in interleaved rounds;
the fastest step (``step_ms``: robust on a shared machine, where other jobs only add
time) and the median are reported, and the ratios use the fastest. Peak memory:
``torch.cuda.max_memory_allocated`` on a GPU; on the CPU the peak resident set size
(VmHWM, reset before each method) minus the RSS before its first step.

    python bench/bench_dense.py [--batch 64] [--size 64] [--device auto] [--precision auto]

Prints one JSON object; ``dsc_over_simclr`` is the step-time ratio (target <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from synthssl.core.config import ConfigError
from synthssl.train.data.batch import ViewBatch
from synthssl.train.device import resolve_device
from synthssl.train.methods.base import MethodContext, StepInfo
from synthssl.train.methods.registry import method_class


def plane_pair_batch(batch: int, size: int, device: torch.device, seed: int = 0) -> ViewBatch:
    """View pairs of a textured tilted plane: exact depth, intrinsics and cameras."""
    g = torch.Generator().manual_seed(seed)
    f = 0.8 * size
    K = torch.tensor([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1.0]])
    v, u = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )
    depths, poses = [], []
    for _ in range(batch):
        for view in range(2):
            shift = 0.0 if view == 0 else float(torch.empty(1).uniform_(0.1, 0.4, generator=g))
            T = torch.eye(4)
            T[0, 3] = shift  # camera moved along x, same orientation
            # plane z = 3 + 0.5 * y_world; camera-frame ray (x, y, 1) * z with y_world = y * z
            ray_y = (v - K[1, 2]) / f
            depths.append(3.0 / (1.0 - 0.5 * ray_y).clamp_min(0.2))
            poses.append(T)
    depth = torch.stack(depths).view(batch, 2, size, size)
    # the plane z - 0.5 y = 3 (camera frame = world axes), normal turned towards the cameras
    normal = (torch.tensor([0.0, 0.5, -1.0]) / 1.25**0.5).view(1, 1, 3, 1, 1).expand(batch, 2, 3, size, size)
    rgb = torch.randn(batch, 2, 3, size, size, generator=g)
    boxes = torch.tensor([0.0, 0.0, size, size]).expand(batch, 2, 4).clone()
    return ViewBatch(
        rgb=rgb,
        crop_boxes=boxes,
        flipped=torch.zeros(batch, 2, dtype=torch.bool),
        scene_id=torch.arange(batch),
        depth=depth,
        normal=normal.clone(),
        contour=torch.zeros(batch, 2, size, size),
        instance=torch.ones(batch, 2, size, size, dtype=torch.long),
        category=torch.ones(batch, 2, size, size, dtype=torch.long),
        valid=depth > 0,
        intrinsics=K.expand(batch, 2, 3, 3).clone(),
        cam_to_world=torch.stack(poses).view(batch, 2, 4, 4),
    ).to(device)


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    """Give freed heap back to the OS (glibc malloc_trim), then reset VmHWM to the current RSS,
    so that each method's peak is measured from its own live memory."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class Runner:
    """One method, its optimiser and the timing of its steps."""

    def __init__(self, name: str, options: dict, ctx: MethodContext, device: torch.device, amp):
        cls = method_class(name)
        self.name = name
        self.method = cls(cls.Config(**options), ctx).to(device).train()
        if device.type == "cuda":
            self.method.to(memory_format=torch.channels_last)
        params = [p for p in self.method.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
        self.device, self.amp = device, amp
        self.times: list[float] = []
        self.last: dict[str, float] = {}
        self.peak_mb = 0.0

    def step(self, batch: ViewBatch, i: int) -> None:
        info = StepInfo(i, 10_000)
        ctx = (
            torch.autocast(self.device.type, dtype=self.amp)
            if self.amp is not None
            else torch.autocast(self.device.type, enabled=False)
        )
        with ctx:
            out = self.method(batch, info)
        out["loss"].backward()
        self.last = {k: float(v) for k, v in out.items() if k in ("matched_fraction", "cluster_entropy")}
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.method.after_optimizer_step(info)

    def measure(self, batch: ViewBatch, steps: int, start: int) -> None:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            _reset_peak_rss()
            base = _rss_kb("VmRSS") * 1024
        for i in range(steps):
            sync()
            t = time.perf_counter()
            self.step(batch, start + i)
            sync()
            self.times.append(time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated() if self.device.type == "cuda" else _rss_kb("VmHWM") * 1024
        self.peak_mb = max(self.peak_mb, (peak - base) / 2**20)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64, help="view pairs per step")
    p.add_argument("--size", type=int, default=64, help="image side in pixels")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--small-stem", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    p.add_argument("--steps", type=int, default=3, help="timed steps per method and round")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16"], help="auto = bf16 autocast on GPU, fp32 on CPU"
    )
    p.add_argument("--dense-level", default="c5", choices=["c4", "c5"], help="DSC dense level")
    args = p.parse_args(argv)

    try:
        device = resolve_device(args.device, "--device")
    except ConfigError as exc:
        print(f"bench_dense: error: {exc}", file=sys.stderr)
        return 2
    amp = {"fp32": None, "bf16": torch.bfloat16}.get(args.precision, torch.bfloat16 if device.type == "cuda" else None)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ctx = MethodContext(arch=args.arch, small_stem=args.small_stem, image_size=args.size)
    configs = {
        "simclr": ("simclr", {}),
        "densecl": ("densecl", {"queue_size": 4096, "dense_warmup_steps": 0}),
        "dsc": ("dsc", {"semantic_warmup_steps": 0, "dense_level": args.dense_level}),
    }
    torch.manual_seed(0)
    batch = plane_pair_batch(args.batch, args.size, device)
    runners = {label: Runner(name, opts, ctx, device, amp) for label, (name, opts) in configs.items()}
    for r in runners.values():  # warm-up (cudnn autotune, k-means state, allocator)
        r.step(batch, 0)
        r.step(batch, 1)
    for k in range(args.rounds):
        for r in runners.values():
            r.measure(batch, args.steps, start=2 + k * args.steps)
    results = {
        label: {
            "step_ms": round(1000 * min(r.times), 2),
            "step_ms_median": round(1000 * statistics.median(r.times), 2),
            "images_per_s": round(2 * args.batch / min(r.times), 1),
            "peak_mem_mb": round(r.peak_mb, 1),
        }
        for label, r in runners.items()
    }
    dsc_cfg = runners["dsc"].method.cfg
    report = {
        "benchmark": "bench_dense",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": "bf16" if amp is not None else "fp32",
        "memory": "cuda max_memory_allocated" if device.type == "cuda" else "peak RSS (VmHWM) above start",
        "arch": args.arch,
        "small_stem": args.small_stem,
        "batch": args.batch,
        "image_size": args.size,
        "dsc": {
            "neighbours": dsc_cfg.neighbours,
            "dense_level": dsc_cfg.dense_level,
            "pixel_samples": dsc_cfg.pixel_samples,
            "semantic_samples": dsc_cfg.semantic_samples,
            "num_clusters": dsc_cfg.num_clusters,
            **runners["dsc"].last,
        },
        "results": results,
        "dsc_over_simclr": round(results["dsc"]["step_ms"] / results["simclr"]["step_ms"], 3),
        "densecl_over_simclr": round(results["densecl"]["step_ms"] / results["simclr"]["step_ms"], 3),
        "target_dsc_over_simclr": 1.3,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
