"""Equal-budget quality benchmark: does pretraining on our renders pay off on real images?

    python bench/bench_quality.py --budget cpu --out out/quality            # 2-core CPU, 50-85 min by machine (< 90)
    python bench/bench_quality.py --budget gpu-hour --out out/quality-gpu   # one H100/H200, about 1 h
    python bench/bench_quality.py --budget cpu --arms random,full --seeds 1 --out out/q
    python bench/bench_quality.py --budget gpu-hour --set steps=4 scenes=32 ... --out out/smoke
    python bench/bench_quality.py --arms random,full --train-set method.synthetic.property_weight=1 --out out/lever-a1
    python bench/bench_quality.py --budget cpu --arms random,full,full_stream --out out/quality-stream

Arms (same backbone, resolution, batch of view pairs, optimiser steps and schedule):

- ``random``: random init, ``random_seeds`` init seeds, no training;
- ``simclr_photos``: SimCLR on two crops of the real-photo folder alone;
- ``contrast``: NT-Xent on the rendered pairs only;
- ``full``: She & Xu: contrast + depth/normal/contour + adversarial adaptation to the photos;
- ``dsc``: Dense Semantic Contrast on the rendered pairs;
- ``dsc_full``: DSC + the synthetic terms (properties + adaptation);
- ``full_stream``: ``full`` trained on scenes rendered while it trains (``data.stream``: the
  training render's config, scenes 0, 1, 2, ... of its seed, each seen once) instead of the
  ``scenes`` rendered ahead and repeated; not in the default ``--arms`` (``--arms
  random,full,full_stream`` compares the two with seeds).

Each arm starts from its shipped config (``train/configs/*.yaml``: the recipe) and the
budget's settings override only what makes the budget equal (resolution, batch, steps,
optimiser and schedule, device). Every trained backbone is evaluated frozen:
Fashion-MNIST (weighted k-NN k=20 and a linear probe, ``fmnist_train`` training images,
the full 10,000-image test set), ``photo-patches`` (real photographs of the Debian
package lomiri-wallpapers-16.04, docs/eval.md) with the same two probes, and the dense
probes on held-out rendered scenes. A difference between two arms is called real only
when it exceeds the sum of their seed spreads (sample std over seeds).

Writes ``OUT/results.json``, ``OUT/report.md``, ``OUT/quality.png`` and, per trained arm
and seed, the run in ``OUT/<arm>-seed<k>/`` (``export/backbone.pt`` + ``backbone.json``,
``eval.json``). A re-run reuses rendered shards, finished trainings (``--resume`` of
unfinished ones) and finished evaluations. Prints the results JSON on stdout; one
progress line per stage on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Optional, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_runs import SettingsMismatch, finished_export, train_run  # noqa: E402
from quality_report import ARMS_ORDER, METRICS, compare_arms, quality_chart, quality_markdown  # noqa: E402

if TYPE_CHECKING:
    import torch


@dataclass
class Budget:
    """What every arm gets. ``--set key=value`` overrides a field (YAML-parsed value)."""

    image_size: int  # training and probe resolution (px, square)
    render_size: int  # rendered shard resolution (>= image_size)
    scenes: int  # rendered training scenes
    heldout_scenes: int  # rendered held-out scenes (dense probes)
    batch_size: int  # view pairs per optimiser step
    steps: int  # optimiser steps per arm
    warmup_steps: int
    optim: str  # adamw | sgd | lars
    lr: float
    weight_decay: float
    seeds: int  # pretraining seeds per trained arm (--seeds overrides)
    random_seeds: int  # init seeds of the random arm
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = False
    small_stem: bool = False  # the CIFAR-style ResNet stem for every arm, random init included
    workers: int = 1  # DataLoader workers per training run
    render_workers: int = 2  # render-scenes workers, and the render workers of the full_stream arm
    threads: int = 0  # torch CPU threads (0 = torch's default)
    photos: str = "/usr/share/backgrounds/mate"
    fmnist_train: int = 10000  # Fashion-MNIST training images (test set: all 10,000)
    fmnist_test: int = 10000
    patches: bool = True  # the photo-patches real-photo task
    patches_root: Optional[str] = None
    dense_train_scenes: int = 48
    dense_test_scenes: int = 16
    dense_steps: int = 300
    single_seed_arms: tuple[str, ...] = ("dsc", "dsc_full")  # arms trained with one seed only


BUDGETS: dict[str, Budget] = {
    # 2 cores, no GPU: 64 px renders trained at 48 px, 16 pairs per step, 900 steps (each scene
    # drawn about 14 times; the step count is measured in docs/quality.md); the gpu-hour preset's
    # optimiser (LARS lr 1.2, weight decay 1e-6). 50 to 85 min on 2-core machines (84.7 min on the
    # slower one: docs/results.md).
    "cpu": Budget(
        image_size=48,
        render_size=64,
        scenes=1024,
        heldout_scenes=64,
        batch_size=16,
        steps=900,
        warmup_steps=10,
        optim="lars",
        lr=1.2,
        weight_decay=1e-6,
        seeds=3,
        random_seeds=3,
        device="cpu",
        threads=0,
    ),
    # One H100/H200 for about an hour: 128 px, 256 pairs per step, enough scenes that each
    # is seen about 8 times per run (3,000 x 256 / 100,000).
    "gpu-hour": Budget(
        image_size=128,
        render_size=128,
        scenes=100000,
        heldout_scenes=256,
        batch_size=256,
        steps=3000,
        warmup_steps=100,
        optim="lars",
        lr=1.2,
        weight_decay=1e-6,
        seeds=2,
        random_seeds=3,
        device="cuda",
        channels_last=True,
        workers=12,
        render_workers=14,
        dense_train_scenes=192,
        dense_test_scenes=64,
        dense_steps=600,
    ),
}

#: arm -> (shipped config, overrides that define the arm).
ARMS: dict[str, tuple[str, list[str]]] = {
    "simclr_photos": ("simclr_photos.yaml", ["data.shards=[]", "data.photo_pairs=true"]),
    "contrast": (
        "synthetic_contrast.yaml",
        [
            "method.synthetic.property_weight=0",
            "method.synthetic.adversarial=none",
            "method.photo_decorrelation_weight=0",
            "data.photos=null",
        ],
    ),
    "full": ("synthetic_contrast.yaml", []),
    "dsc": (
        "dsc.yaml",
        ["method.synthetic.property_weight=0", "method.synthetic.adversarial=none", "data.photos=null"],
    ),
    # dsc.yaml switches the synthetic terms off; dsc_full gives them the She & Xu recipe's weight.
    "dsc_full": (
        "dsc.yaml",
        ["method.synthetic.property_weight={recipe_property_weight}", "method.synthetic.adversarial=gan"],
    ),
    "full_stream": ("synthetic_contrast.yaml", []),
}
#: Arms that train on scenes rendered while training (`stream_config`), not on the rendered shards.
STREAM_ARMS = ("full_stream",)
#: Arms that train on the training shards (rendered before any arm trains).
SHARD_ARMS = ("contrast", "full", "dsc", "dsc_full")


def log(msg: str) -> None:
    print(f"[quality] {msg}", file=sys.stderr, flush=True)


def fail(msg: str, program: str = "bench_quality") -> NoReturn:
    """A user error: one line on stderr naming ``program``, exit 2."""
    print(f"{program}: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


BudgetT = TypeVar("BudgetT")


def apply_sets(budget: BudgetT, items: list[str], program: str = "bench_quality") -> BudgetT:
    """``budget`` (a budget dataclass of this benchmark or another) with ``KEY=VALUE`` overrides; a
    bad key or value is a one-line error naming ``program`` (exit 2)."""
    import yaml

    from synthssl.core.yaml_numbers import safe_load  # the config engine's reader: 5e-4 is a number

    names = [f.name for f in dataclasses.fields(budget)]
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or key not in names:
            fail(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(names)}", program)
        try:
            value = safe_load(raw)
        except yaml.YAMLError:
            fail(f"--set {key}: cannot parse {raw!r}", program)
        default = getattr(budget, key)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = (isinstance(value, str) or value is None) if default is None else (type(value) is type(default))
        if not ok:
            expected = type(default).__name__ if default is not None else "a string"
            fail(f"--set {key}: expected {expected}, got {raw!r}", program)
        changes[key] = value
    return dataclasses.replace(budget, **changes)


# ----------------------------------------------------------------------------- render


def render(out: Path, scenes: int, seed: int, budget: Budget, extra: list[str]) -> Path:
    """Render (or reuse) ``scenes`` scene pairs with the render defaults (+ ``extra`` ``key=value``
    overrides); returns the folder. render-scenes' progress lines and errors pass through to stderr;
    its JSON summary (stdout) is read here."""
    cmd = [
        sys.executable,
        "-m",
        "synthssl.render.cli",
        f"out={out}",
        f"scenes={scenes}",
        f"size={budget.render_size}",
        f"seed={seed}",
        f"workers={budget.render_workers}",
        f"appearance.photo_dir={budget.photos}",
        *extra,
        "--resume",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"bench_quality: rendering {out} failed (exit {proc.returncode}; render-scenes' message is above)"
        )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    log(
        f"render {out.name}: {scenes} scenes ready ({summary['scenes_rendered']} rendered now) "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return out


def stream_config(folder: Path, budget: Budget, extra: list[str]) -> Path:
    """The render config of the training render (`render`'s keys with seed 0, then the ``extra``
    ``key=value`` overrides), for the arms that train on a stream: written as YAML into ``folder``,
    named by its content (``stream-HASH.yaml``), so that a run on other scenes has other settings
    and is never reused for these (`bench_runs.train_run`). Returns its path."""
    import yaml

    from synthssl.core.config import apply_override
    from synthssl.train.export import atomic_write_text

    tree: dict = {"size": budget.render_size, "seed": 0, "appearance": {"photo_dir": budget.photos}}
    for item in extra:
        apply_override(tree, item)
    text = yaml.safe_dump(tree, sort_keys=True)
    path = folder / f"stream-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(text, path)
    return path


# ----------------------------------------------------------------------------- train


def train_overrides(
    arm: str, seed: int, budget: Budget, shards: Path, run: Path, stream: Optional[Path] = None
) -> list[str]:
    """Dotted overrides that put ``arm``'s shipped config on the equal budget (``stream``: the render
    config of the `STREAM_ARMS`, `stream_config`)."""
    if arm in STREAM_ARMS:
        if stream is None:
            raise ValueError(f"arm {arm}: trains on a stream; give the render config (stream_config)")
        data = ["data.shards=[]", f"data.stream={stream}", f"data.stream_workers={budget.render_workers}"]
    else:
        data = [f"data.shards=[{shards}]"]
    o = [
        f"data.image_size={budget.image_size}",
        f"data.batch_size={budget.batch_size}",
        f"data.workers={budget.workers}",
        f"data.photos={budget.photos}",
        *data,
        f"train.steps={budget.steps}",
        f"train.seed={seed}",
        f"train.device={budget.device}",
        f"train.precision={budget.precision}",
        f"train.out={run}",
        "train.checkpoint_every=0",
        f"optim.name={budget.optim}",
        f"optim.lr={budget.lr}",
        f"optim.weight_decay={budget.weight_decay}",
        f"optim.warmup_steps={budget.warmup_steps}",
        f"model.channels_last={str(budget.channels_last).lower()}",
        f"model.small_stem={str(budget.small_stem).lower()}",
        "log.progress=false",
        f"log.every={max(1, budget.steps // 20)}",
        "log.tensorboard=false",
    ]
    from synthssl.train.methods.synthetic_terms import SyntheticTermsConfig

    if arm.startswith("dsc"):
        o.append(f"method.semantic_warmup_steps={budget.steps // 4}")  # same fraction of any budget
    recipe = {"recipe_property_weight": SyntheticTermsConfig().property_weight}
    return o + [item.format(**recipe) for item in ARMS[arm][1]]  # the arm's own overrides come last


def train_budgeted(config: Path, overrides: list[str], run: Path, budget: Any, program: str = "bench_quality") -> float:
    """Train (or resume, or reuse) the run ``run`` of ``config`` with ``overrides``, with ``budget``'s
    threads and steps; returns its training wall time in seconds (all attempts). A run made with other
    settings into the same --out is refused in one line naming ``program`` (exit 2), never mixed in."""
    from synthssl.train.config import ConfigError

    env = dict(os.environ)
    if budget.threads > 0:
        env["OMP_NUM_THREADS"] = str(budget.threads)
    try:
        return train_run(config, overrides, run, budget.steps, env=env)
    except (SettingsMismatch, ConfigError) as exc:
        fail(f"{exc}; give a new --out for these settings" if isinstance(exc, SettingsMismatch) else str(exc), program)
    except RuntimeError as exc:
        raise SystemExit(f"{program}: {exc}") from None


def train_arm(
    arm: str, seed: int, budget: Budget, shards: Path, run: Path, extra: list[str], stream: Optional[Path] = None
) -> float:
    """Train (or resume, or reuse) one arm (`train_budgeted`); returns its training wall time in seconds."""
    overrides = [*train_overrides(arm, seed, budget, shards, run, stream), *extra]
    return train_budgeted(ROOT / "train/configs" / ARMS[arm][0], overrides, run, budget)


def random_export(run: Path, seed: int, budget: Budget) -> None:
    """Export a random-init backbone (``torch.manual_seed(seed)``) in the export format."""
    import torch

    from synthssl.train.data.batch import IMAGENET_MEAN, IMAGENET_STD
    from synthssl.train.export import save_backbone
    from synthssl.train.models.backbone import build_backbone

    if finished_export(run, 0):
        return
    torch.manual_seed(seed)
    save_backbone(
        build_backbone("resnet18", budget.small_stem),
        run / "export",
        arch="resnet18",
        small_stem=budget.small_stem,
        image_size=budget.image_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        method="random_init",
        steps=0,
    )


# ----------------------------------------------------------------------------- evaluate


def shards_sha256(folder: Path) -> str:
    """One digest of a rendered folder's shard bytes, from the sha256 of each shard that its
    manifest.json records (docs/shard-format.md)."""
    from synthssl.dataset.manifest import read_manifest

    manifest = read_manifest(folder)
    if manifest is None:
        raise SystemExit(f"bench_quality: {folder}/manifest.json: missing or unreadable (render the folder again)")
    digests = sorted((e["file"], e["sha256"]) for e in manifest["shards"])
    return hashlib.sha256(json.dumps(digests).encode()).hexdigest()[:16]


def evaluation_settings(budget: Budget, heldout: Path) -> dict:
    """What an evaluation record must match to be reused: the probe settings and the held-out
    renders' bytes (another render of them, even one llvmpipe drew a few pixels differently,
    re-runs the probes)."""
    settings = {
        k: getattr(budget, k)
        for k in (
            "image_size",
            "fmnist_train",
            "fmnist_test",
            "patches",
            "patches_root",
            "dense_train_scenes",
            "dense_test_scenes",
            "dense_steps",
        )
    }
    return {**settings, "heldout_sha256": shards_sha256(heldout)}


class ImageProbes:
    """The image-level probes of a frozen backbone on real images: weighted k-NN (k=20) and a linear
    probe on Fashion-MNIST (``fmnist_train`` / ``fmnist_test`` images) and, with ``patches``, on the
    photo-patches task (all of it). Metrics ``<task>_knn`` and ``<task>_linear``, top-1 %, and
    ``<task>_erank``, the effective rank of the test images' pooled c5 (a collapse diagnostic,
    `synthssl.train.eval.effective_rank`)."""

    def __init__(self, budget: Any, device: torch.device, cache: Optional[Path]):
        from synthssl.train.eval.fashion_mnist import load_fashion_mnist
        from synthssl.train.eval.feature_cache import FeatureCache
        from synthssl.train.eval.photo_patches import load_photo_patches

        self.image_size, self.device = budget.image_size, device
        self.cache = FeatureCache(cache) if cache is not None else None
        self.tasks = {
            "fmnist": (load_fashion_mnist("train"), load_fashion_mnist("test"), budget.fmnist_train, budget.fmnist_test)
        }
        if budget.patches:
            train, test = load_photo_patches(budget.patches_root)
            self.tasks["patches"] = (train, test, len(train), len(test))
        self.metric_names = [f"{task}_{probe}" for task in self.tasks for probe in ("linear", "knn", "erank")]

    def __call__(self, encoder: torch.nn.Module, meta: dict) -> dict[str, float]:
        from synthssl.train.eval.effective_rank import effective_rank
        from synthssl.train.eval.image_probe import ImageProbeConfig, run_image_probes

        metrics: dict[str, float] = {}
        for task, (train, test, n_train, n_test) in self.tasks.items():
            cfg = ImageProbeConfig(train_size=n_train, test_size=n_test, seeds=(0,), knn_k=(20,))
            res = run_image_probes(
                encoder,
                train,
                test,
                image_size=self.image_size,
                mean=meta["mean"],
                std=meta["std"],
                config=cfg,
                device=self.device,
                cache=self.cache,
            )
            metrics[f"{task}_knn"] = res.metrics["knn_k20"]["mean"]
            metrics[f"{task}_linear"] = res.metrics["linear"]["mean"]
            metrics[f"{task}_erank"] = effective_rank(res.embedding)
        return metrics


class Evaluator:
    """Frozen-backbone probes on the benchmark's real-image tasks and held-out renders."""

    def __init__(self, budget: Budget, device: torch.device, heldout: Path, cache: Path):
        from synthssl.train.eval.dense_data import load_dense_views

        self.budget = budget
        self.device = device
        self.images = ImageProbes(budget, device, cache)
        self.dense = load_dense_views(
            [heldout], train_scenes=budget.dense_train_scenes, test_scenes=budget.dense_test_scenes, seed=0
        )
        self.metric_names = [
            m for m in METRICS if m.split("_")[0] not in ("fmnist", "patches") or m.split("_")[0] in self.images.tasks
        ]
        self.settings = evaluation_settings(budget, heldout)

    def __call__(self, export: Path) -> dict[str, float]:
        from synthssl.train.eval.backbones import load_eval_backbone
        from synthssl.train.eval.dense_probe import DenseProbeConfig, run_dense_probes

        b = load_eval_backbone(export, export.parent.name)
        b.encoder.to(self.device)
        metrics = self.images(b.encoder, b.meta)
        train_v, test_v, categories = self.dense
        dense = run_dense_probes(
            b.encoder,
            train_v,
            test_v,
            len(categories),
            mean=b.meta["mean"],
            std=b.meta["std"],
            config=DenseProbeConfig(steps=self.budget.dense_steps),
            device=self.device,
        )
        m = dense.metrics
        metrics.update(
            depth_absrel=m["depth"]["abs_rel"],
            normal_deg=m["normal"]["mean_angle"],
            contour_f=m["contour"]["ods_f"],
            category_miou=m["segmentation"]["miou"],
        )
        return metrics


def evaluate_run(evaluate: Evaluator, run: Path, train_seconds: float) -> dict:
    """Evaluate (or reuse the evaluation of) ``run``'s export; the record lands in ``run/eval.json``."""
    from synthssl.train.eval.feature_cache import backbone_fingerprint
    from synthssl.train.export import atomic_write_text, load_backbone

    fingerprint = backbone_fingerprint(load_backbone(run / "export")[0])[:16]
    record_path = run / "eval.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if (
            record.get("fingerprint") == fingerprint
            and record.get("settings") == evaluate.settings
            and set(evaluate.metric_names) <= set(record["metrics"])
        ):
            return record
    t0 = time.perf_counter()
    metrics = evaluate(run / "export")
    record = {
        "fingerprint": fingerprint,
        "settings": evaluate.settings,
        "metrics": metrics,
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - t0,
    }
    atomic_write_text(json.dumps(record, indent=2) + "\n", record_path)
    return record


# ----------------------------------------------------------------------------- main


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--budget", choices=sorted(BUDGETS), default="cpu", help="preset (default cpu)")
    p.add_argument("--out", type=Path, required=True, help="output folder (re-runs reuse what is finished)")
    p.add_argument(
        "--arms",
        default=",".join(ARMS_ORDER),
        help=f"comma-separated subset of {','.join(ARMS_ORDER)} (default: all of them), and full_stream",
    )
    p.add_argument("--seeds", type=int, help="pretraining seeds per trained arm (default: the budget's)")
    p.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override budget fields, e.g. --set steps=4 scenes=32",
    )
    p.add_argument(
        "--train-set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="train-ssl overrides for every trained arm (a lever), e.g. method.synthetic.property_weight=1",
    )
    p.add_argument(
        "--render-set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="render-scenes key=value overrides (a lever), e.g. appearance.texture_weights.photo=0",
    )
    return p.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    budget = apply_sets(BUDGETS[args.budget], args.set)
    if args.seeds is not None:
        if args.seeds < 1:
            fail("--seeds must be >= 1")
        budget = dataclasses.replace(budget, seeds=args.seeds)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    known = [*ARMS_ORDER, *[a for a in ARMS if a not in ARMS_ORDER]]
    unknown = [a for a in arms if a not in known]
    if unknown or not arms:
        fail(f"--arms: unknown arm(s) {unknown}; choose from {','.join(known)}")
    if budget.image_size > budget.render_size:
        fail(f"--set image_size={budget.image_size} is larger than render_size={budget.render_size}")
    from synthssl.train.device import resolve_device

    try:
        device = resolve_device(budget.device, "--set device")  # before anything is rendered
    except ValueError as exc:
        fail(str(exc))
    if budget.threads > 0:
        import torch

        torch.set_num_threads(budget.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    log(f"budget {args.budget}: {json.dumps(dataclasses.asdict(budget))}")
    for item in args.train_set + args.render_set:
        if "=" not in item:
            fail(f"--train-set/--render-set {item!r}: expected dotted.key=value")
    shards = out / "data" / "train"
    if any(a in SHARD_ARMS for a in arms):
        render(shards, budget.scenes, 0, budget, args.render_set)
    stream = stream_config(out / "data", budget, args.render_set) if set(arms) & set(STREAM_ARMS) else None
    heldout = render(out / "data" / "heldout", budget.heldout_scenes, 1, budget, args.render_set)
    try:
        evaluate = Evaluator(budget, device, heldout, out / "cache")
    except (FileNotFoundError, ValueError) as exc:  # a missing data set names its package
        fail(str(exc))

    runs: dict[str, dict[int, dict]] = {}
    for arm in arms:
        seeds = range(
            budget.random_seeds if arm == "random" else (1 if arm in budget.single_seed_arms else budget.seeds)
        )
        for seed in seeds:
            run = out / f"{arm}-seed{seed}"
            t0 = time.perf_counter()
            if arm == "random":
                random_export(run, seed, budget)
                train_seconds = 0.0
            else:
                log(f"{arm} seed {seed}: training {budget.steps} steps ({time.perf_counter() - t_start:.0f} s so far)")
                train_seconds = train_arm(arm, seed, budget, shards, run, args.train_set, stream)
            record = evaluate_run(evaluate, run, train_seconds)
            runs.setdefault(arm, {})[seed] = record
            m = record["metrics"]
            log(
                f"{arm} seed {seed}: done in {time.perf_counter() - t0:.0f} s (train {train_seconds:.0f} s); "
                + ", ".join(f"{k} {m[k]:.3g}" for k in METRICS if k in m)
            )
    results = {
        "budget": args.budget,
        "settings": dataclasses.asdict(budget),
        "train_set": args.train_set,
        "render_set": args.render_set,
        "runs": {arm: {str(s): r for s, r in per_seed.items()} for arm, per_seed in runs.items()},
    }
    results.update(compare_arms(runs))
    results["total_seconds"] = time.perf_counter() - t_start  # this invocation (re-runs reuse work)
    results["run_seconds"] = sum(
        r["train_seconds"] + r["eval_seconds"] for per in runs.values() for r in per.values()
    )  # training + evaluation of every run, when it ran
    from synthssl.train.eval.drawing import write_png
    from synthssl.train.export import atomic_write_text

    write_png(out / "quality.png", quality_chart(results))
    atomic_write_text(quality_markdown(results), out / "report.md")
    atomic_write_text(json.dumps(results, indent=2) + "\n", out / "results.json")
    log(
        f"wrote {out / 'report.md'}, {out / 'results.json'}, {out / 'quality.png'} "
        f"in {results['total_seconds'] / 60:.1f} min"
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
