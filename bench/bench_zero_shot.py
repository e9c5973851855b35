"""Zero-shot depth on real ground truth: the demo recipe with and without adaptation, same budget.

    python bench/bench_zero_shot.py --shards out/demo/shards --out out/zero_shot              # demo budget
    python bench/bench_zero_shot.py --shards out/demo/shards --out out/zero_shot --seeds 0 1 2
    python bench/bench_zero_shot.py --shards S --out O --steps 2 --set data.image_size=32   # smoke test
    python bench/bench_zero_shot.py ... --score full=out/quality/full-seed0                  # add existing runs
    python bench/bench_zero_shot.py ... --data castel                 # ViSP's 30 RGB-D frames instead

Two arms, both ``train/configs/demo.yaml`` (contrast + depth/normal/contour, 48 px, 400
steps) on the same shards, photos, steps, seeds and schedule:

- ``adapted``: the recipe as shipped (GAN feature adaptation to ``data.photos``);
- ``no_adaptation``: the same with ``method.synthetic.adversarial=none``.

Each trained run's heads (``export/heads.pt``) are scored without any training on real
data by ``train-ssl predict zero_shot=true``'s code: the Middlebury 2014 Motorcycle left
view (``synthssl.train.eval.middlebury``), or with ``--data castel`` ViSP's 30 RGB-D
frames (``synthssl.train.eval.castel``, means over the frames), depth AbsRel and
δ<1.25 after per-image median scaling, and Spearman ρ. Two reference points that are
not models come with them: a constant depth and ``row_prior_depth`` (farther towards
the top).

Runs land in ``OUT/<arm>-seed<k>/``; a finished run with the same settings is reused,
an unfinished one resumed. Prints one JSON object on stdout (also ``OUT/results.json``):
per arm the per-seed scores, their mean and sample std, and ``adapted - no_adaptation``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_runs import SettingsMismatch, train_run  # noqa: E402

RECIPE = ROOT / "train" / "configs" / "demo.yaml"
ARMS = {"adapted": [], "no_adaptation": ["method.synthetic.adversarial=none"]}
METRICS = ("abs_rel", "delta1", "spearman")


def log(msg: str) -> None:
    print(f"[zero-shot] {msg}", file=sys.stderr, flush=True)


def fail(msg: str) -> None:
    """A user error: one line on stderr, exit 2."""
    print(f"bench_zero_shot: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def train_overrides(args: argparse.Namespace, arm: str, seed: int, run: Path) -> list[str]:
    """Dotted overrides of one arm: the same for both arms except the arm's own, which come last."""
    shards = ",".join(str(s) for s in args.shards)
    return [
        f"data.shards=[{shards}]",
        f"data.photos={args.photos}",
        f"train.out={run}",
        f"train.steps={args.steps}",
        f"train.seed={seed}",
        f"train.device={args.device}",
        "train.checkpoint_every=0",
        "log.progress=false",
        "log.tensorboard=false",
        *args.set,
        *ARMS[arm],
    ]


def train(args: argparse.Namespace, arm: str, seed: int, run: Path) -> float:
    """Train (reuse, or resume) one run; returns its training seconds over all attempts."""
    from synthssl.train.config import ConfigError

    try:
        return train_run(RECIPE, train_overrides(args, arm, seed, run), run, args.steps)
    except (SettingsMismatch, ConfigError) as exc:
        fail(f"{exc}; give a new --out for these settings" if isinstance(exc, SettingsMismatch) else str(exc))
    except RuntimeError as exc:
        raise SystemExit(f"bench_zero_shot: {exc}") from None


def summarise(per_seed: list[dict]) -> dict:
    """Mean and sample std (ddof 1; 0 for one seed) of each metric over seeds."""
    out: dict = {"per_seed": per_seed}
    for k in METRICS:
        v = np.array([r[k] for r in per_seed], dtype=np.float64)
        out[k] = float(v.mean())
        out[f"{k}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return out


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--shards", type=Path, nargs="+", required=True, help="rendered training shard folder(s)")
    p.add_argument("--out", type=Path, required=True, help="output folder (re-runs reuse finished runs)")
    p.add_argument("--photos", default="/usr/share/backgrounds/mate", help="real photos for the adaptation")
    p.add_argument("--steps", type=int, default=400, help="training steps of both arms (default: the demo's 400)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    p.add_argument("--size", type=int, help="--size of predict (default: twice the training image size)")
    p.add_argument("--device", default="auto", help="training and scoring device (default: auto)")
    p.add_argument(
        "--data", choices=("middlebury", "castel"), default="middlebury", help="real depth (default: middlebury)"
    )
    p.add_argument("--root", help="folder of the --data files (default: where setup.sh or apt-get puts them)")
    p.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="train-ssl overrides for both arms, e.g. data.image_size=32",
    )
    p.add_argument(
        "--score",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME=RUN",
        help="also score existing runs or exports (with heads), e.g. full=out/quality/full-seed0",
    )
    return p.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    from synthssl.core.config import ConfigError
    from synthssl.train.device import resolve_device
    from synthssl.train.eval.zero_shot import depth_zero_shot_metrics, row_prior_depth
    from synthssl.train.export import atomic_write_text
    from synthssl.train.predict.cli import default_size
    from synthssl.train.predict.model import load_predictor
    from synthssl.train.predict.zero_shot import load_zero_shot, mean_scores, score_zero_shot_set

    if args.steps < 1 or (args.size is not None and args.size < 1):
        fail("--steps and --size must be positive")
    for item in args.set + args.score:
        if "=" not in item:
            fail(f"--set/--score {item!r}: expected KEY=VALUE")
    missing = [str(s) for s in args.shards if not s.is_dir()]
    if missing:
        fail(f"--shards: {', '.join(missing)} not found (render them first, e.g. bash scripts/demo.sh)")
    try:
        real = load_zero_shot(args.data, args.root)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    try:
        device = resolve_device(args.device, "--device")
    except ConfigError as exc:
        fail(str(exc))

    def score(run: Path) -> dict:
        try:
            predictor = load_predictor(run, device)
        except (FileNotFoundError, ValueError) as exc:  # NoHeadsError names the method
            fail(str(exc))
        return score_zero_shot_set(predictor, args.data, real, args.size or default_size(predictor.meta), device)

    def reference(depth_of) -> dict:
        """A reference point's metrics: one image's, or their means over the images (as the runs')."""
        per_image = [depth_zero_shot_metrics(depth_of(*r.depth.shape), r.depth, r.valid) for r in real]
        return per_image[0] if len(per_image) == 1 else mean_scores(per_image)

    args.out.mkdir(parents=True, exist_ok=True)
    arms: dict[str, dict] = {}
    for arm in ARMS:
        per_seed = []
        for seed in args.seeds:
            run = args.out / f"{arm}-seed{seed}"
            log(f"{arm} seed {seed}: training {args.steps} steps -> {run}")
            seconds = train(args, arm, seed, run)
            per_seed.append({"seed": seed, "train_seconds": seconds, **score(run)})
            log(f"{arm} seed {seed}: " + ", ".join(f"{k} {per_seed[-1][k]:.4g}" for k in METRICS))
        arms[arm] = summarise(per_seed)
    references = {
        "constant": reference(lambda h, w: np.ones((h, w))),
        "row_prior": reference(row_prior_depth),
    }
    extra = {}
    for item in args.score:
        name, _, run = item.partition("=")
        extra[name] = score(Path(run))
    results = {
        "dataset": real[0].name if len(real) == 1 else args.data,
        "recipe": str(RECIPE.relative_to(ROOT)),
        "steps": args.steps,
        "seeds": args.seeds,
        "set": args.set,
        "size": arms["adapted"]["per_seed"][0]["size"],
        "arms": arms,
        "adapted_minus_no_adaptation": {k: arms["adapted"][k] - arms["no_adaptation"][k] for k in METRICS},
        "references": references,
        "scored": extra,
    }
    atomic_write_text(json.dumps(results, indent=2) + "\n", args.out / "results.json")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
