"""Dense benchmark: do the pretraining methods differ on dense tasks, beyond the spread over seeds?

    python bench/bench_dense_quality.py --budget cpu --out out/dense                  # main arms, 2-core CPU, < 90 min
    python bench/bench_dense_quality.py --budget cpu --arms ablation --out out/dense  # DSC levels, MoCo v2, DenseCL
    python bench/bench_dense_quality.py --budget gpu-hour --arms all --out out/dense-gpu
    python bench/bench_dense_quality.py --arms random,dsc --seeds 1 --set steps=4 scenes=16 ... --out out/smoke

Arms (same backbone, resolution, batch of view pairs, optimiser, steps and schedule; the first
five as in ``bench/bench_quality.py``, whose equal-budget overrides every arm starts from):

- ``random``: random init, ``random_seeds`` init seeds, no training;
- ``simclr_photos``: SimCLR on two crops of each real photo;
- ``mocov2``, ``densecl``: MoCo v2 and DenseCL on the rendered pairs (their shipped configs; DenseCL's
  dense warm-up a quarter of the steps, as DSC's semantic one);
- ``contrast``: NT-Xent on the rendered pairs only;
- ``contrast_properties``: ``contrast`` + depth/normal/contour prediction at the She & Xu recipe's
  property weight, no adaptation: the dense half of She & Xu;
- ``full``: She & Xu: contrast + properties + GAN adaptation to the photos (+ our photo decorrelation);
- ``dsc_instance``, ``dsc_pixel``, ``dsc``: Dense Semantic Contrast's levels, ablated: the instance
  level only (``method.weight_pixel=0 method.weight_semantic=0``), + the pixel level with geometric
  neighbours (``method.weight_semantic=0``), + the semantic level (DSC as shipped);
- ``dsc_decorrelation``: DSC + the channel decorrelation of the renders' pooled c5 at the weight
  that ``synthetic_contrast`` measured (``method.decorrelation_weight=10``, docs/quality.md round
  fifteen): the lever against the collapse of instance contrast on out-of-domain images;
- ``dsc_full``: DSC + the She & Xu terms (properties + adaptation).

``--arms main`` (the default) runs random, simclr_photos, contrast, contrast_properties, full, dsc and
dsc_full; ``--arms ablation`` runs random, contrast, dsc_instance, dsc_pixel, dsc, dsc_decorrelation,
mocov2 and densecl (into the same ``--out`` it reuses what the main run finished); ``--arms all`` runs
every arm.

Every backbone is evaluated frozen (docs/quality.md, "The dense benchmark"): linear probes (one 1x1
convolution per task on the levels ``probe_levels`` at stride ``probe_stride``, upsampled bilinearly)
for category segmentation (mIoU over the categories present in the probe-test set), depth (AbsRel),
normals (mean angle) and instance contours (ODS-F) on held-out renders (rendered with seed 1, training
with seed 0), each with its own learning-rate check on a probe-validation split and a recorded loss
curve (`synthssl.train.eval.dense_probe_protocol`); real depth: a linear depth probe trained on the
first half of ViSP's castel RGB-D frames and scored on the second half, the render-trained depth probe
applied to castel and to Middlebury 2014 Motorcycle (median-scaled), and the zero-shot depth of
``train-ssl predict`` for arms whose export has depth heads; and the global probes of
``bench/bench_quality.py`` (Fashion-MNIST and photo-patches, weighted k-NN and linear, and the
features' effective rank). The probes of ``noise_arms``' seed 0 are refitted with ``noise_seeds``
probe seeds: the probes' own noise, reported beside the spread over pretraining seeds. Every pair
of arms gets a verdict per metric: a difference beyond the sum of the two spreads, or a tie
(`dense_quality_report`).

Writes ``OUT/results.json``, ``OUT/report.md`` and per run ``OUT/<arm>-seed<k>/`` (the training run,
``export/``, ``dense_eval.json``, ``global_eval.json``). A re-run reuses rendered shards, finished
trainings (``--resume`` of unfinished ones) and evaluations with the same backbone, probe settings
and held-out render bytes.
Prints the results JSON on stdout; one progress line per stage on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_quality import (  # noqa: E402
    ImageProbes,
    apply_sets,
    random_export,
    render,
    shards_sha256,
    train_budgeted,
    train_overrides,
)
from bench_quality import fail as quality_fail  # noqa: E402
from dense_quality_report import ARMS_ORDER, compare_pairs, dense_markdown, summarise_arms  # noqa: E402

#: The name user errors start with.
PROGRAM = "bench_dense_quality"


@dataclass
class Budget:
    """What every arm gets and how it is probed. ``--set key=value`` overrides a field (YAML-parsed).
    The training fields mean what they mean in ``bench/bench_quality.py``."""

    image_size: int  # training resolution (px, square); real images are fed at twice this (real_size)
    render_size: int  # rendered resolution of the training and held-out scenes (>= image_size)
    scenes: int  # rendered training scenes
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
    small_stem: bool = False
    workers: int = 1  # DataLoader workers per training run
    render_workers: int = 2
    threads: int = 0  # torch CPU threads (0 = torch's default)
    photos: str = "/usr/share/backgrounds/mate"
    probe_train_scenes: int = 256  # held-out scenes the probes train on (all views of each)
    probe_test_scenes: int = 128  # held-out scenes they are scored on (disjoint)
    probe_levels: tuple[str, ...] = ("c3", "c4", "c5")  # backbone levels, concatenated
    probe_stride: int = 8  # feature grid stride (px of the probed image)
    probe_steps: int = 400  # Adam steps per probe fit (cosine decay)
    probe_batch: int = 16  # views per probe step
    probe_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)  # rate grid: segmentation, normals, contours
    probe_depth_lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3)  # rate grid: depth (renders, castel)
    probe_val_fraction: float = 0.25  # share of the probe-train scenes held out to check the rate
    noise_arms: tuple[str, ...] = ("random", "contrast")  # seed 0 of these gets the probe-noise refits
    noise_seeds: int = 5  # probe seeds per noise backbone (the first is the main fit's)
    real_size: int = 0  # shorter side of the real images for the probes (0: 2 x image_size, predict's size)
    castel_root: Optional[str] = None  # ViSP castel frames (None: synthssl.train.eval.castel.DEFAULT_ROOT)
    middlebury_root: Optional[str] = None  # Middlebury Motorcycle (None: synthssl.train.eval.middlebury's)
    fmnist_train: int = 5000  # global probes (bench_quality's): Fashion-MNIST training images
    fmnist_test: int = 5000  # and test images (one fixed random draw of each split)
    patches: bool = True  # global probes on the photo-patches task too
    patches_root: Optional[str] = None


BUDGETS: dict[str, Budget] = {
    # 2 cores, no GPU: bench_quality's cpu recipe (64 px renders trained at 48 px, 16 pairs per step,
    # LARS lr 1.2) at 300 steps, so that 6 trained arms x 3 seeds and the probes of 21 backbones fit
    # 90 minutes (about 83 min measured on a quiet machine: docs/quality.md).
    "cpu": Budget(
        image_size=48,
        render_size=64,
        scenes=1024,
        batch_size=16,
        steps=300,
        warmup_steps=10,
        optim="lars",
        lr=1.2,
        weight_decay=1e-6,
        seeds=3,
        random_seeds=3,
        device="cpu",
    ),
    # One H100/H200: bench_quality's gpu-hour recipe (128 px, 256 pairs per step) at 1,000 steps per
    # run, 4x the probe data, and probes on the GPU (not measured at size yet).
    "gpu-hour": Budget(
        image_size=128,
        render_size=128,
        scenes=100000,
        batch_size=256,
        steps=1000,
        warmup_steps=100,
        optim="lars",
        lr=1.2,
        weight_decay=1e-6,
        seeds=3,
        random_seeds=3,
        device="cuda",
        channels_last=True,
        workers=12,
        render_workers=14,
        probe_train_scenes=1024,
        probe_test_scenes=512,
        probe_steps=1000,
        probe_batch=32,
        fmnist_train=10000,
        fmnist_test=10000,
    ),
}


@dataclass(frozen=True)
class Arm:
    """A trained arm: ``bench_quality``'s equal-budget overrides of its arm ``base`` (which also names the
    shipped config unless ``config`` does), then ``extra`` (``{recipe_property_weight}`` and
    ``{quarter_steps}`` filled in)."""

    base: str
    extra: tuple[str, ...] = ()
    config: Optional[str] = None


ARMS: dict[str, Arm] = {
    "simclr_photos": Arm("simclr_photos"),
    "mocov2": Arm("full", ("data.photos=null",), "mocov2.yaml"),
    "densecl": Arm("full", ("data.photos=null", "method.dense_warmup_steps={quarter_steps}"), "densecl.yaml"),
    "contrast": Arm("contrast"),
    "contrast_properties": Arm("contrast", ("method.synthetic.property_weight={recipe_property_weight}",)),
    "full": Arm("full"),
    "dsc_instance": Arm("dsc", ("method.weight_pixel=0", "method.weight_semantic=0")),
    "dsc_pixel": Arm("dsc", ("method.weight_semantic=0",)),
    "dsc": Arm("dsc"),
    "dsc_decorrelation": Arm("dsc", ("method.decorrelation_weight=10",)),
    "dsc_full": Arm("dsc_full"),
}

ARM_GROUPS: dict[str, tuple[str, ...]] = {
    "main": ("random", "simclr_photos", "contrast", "contrast_properties", "full", "dsc", "dsc_full"),
    "ablation": ("random", "contrast", "dsc_instance", "dsc_pixel", "dsc", "dsc_decorrelation", "mocov2", "densecl"),
    "all": ARMS_ORDER,
}

#: flat metric -> (probe task, its metric) on the held-out renders
RENDER_METRICS = {
    "seg_miou": ("segmentation", "miou_present"),
    "depth_absrel": ("depth", "abs_rel"),
    "normal_deg": ("normal", "mean_angle"),
    "contour_f": ("contour", "ods_f"),
}


def log(msg: str) -> None:
    print(f"[dense] {msg}", file=sys.stderr, flush=True)


def fail(msg: str) -> NoReturn:
    """A user error: one line on stderr, exit 2."""
    quality_fail(msg, PROGRAM)


def check_budget(budget: Budget) -> Budget:
    """The budget with its probe learning rates as floats; a value out of range is a one-line error."""
    from synthssl.train.eval.dense_features import LEVELS

    if budget.image_size > budget.render_size:
        fail(f"--set image_size={budget.image_size} is larger than render_size={budget.render_size}")
    if budget.probe_train_scenes < 2 or budget.probe_test_scenes < 1:
        fail("--set probe_train_scenes must be >= 2 (the learning-rate check splits it) and probe_test_scenes >= 1")
    if min(budget.probe_steps, budget.probe_batch, budget.probe_stride, budget.noise_seeds, budget.seeds) < 1:
        fail("--set probe_steps, probe_batch, probe_stride, noise_seeds and seeds must be >= 1")
    if not 0 < budget.probe_val_fraction < 1:
        fail(f"--set probe_val_fraction={budget.probe_val_fraction}: expected a value in (0, 1)")
    if not budget.probe_levels or any(lv not in LEVELS for lv in budget.probe_levels):
        fail(f"--set probe_levels={list(budget.probe_levels)}: expected a non-empty subset of {list(LEVELS)}")
    for key in ("probe_lrs", "probe_depth_lrs"):
        lrs = getattr(budget, key)
        if not lrs or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 for v in lrs):
            fail(f"--set {key}={list(lrs)}: expected a list of learning rates > 0")
    if len(budget.probe_lrs) != len(budget.probe_depth_lrs):
        fail("--set probe_lrs and probe_depth_lrs: expected grids of the same length (fit k tries the k-th of each)")
    unknown = [a for a in budget.noise_arms if a not in ARMS_ORDER]
    if unknown:
        fail(f"--set noise_arms: unknown arm(s) {unknown}; choose from {','.join(ARMS_ORDER)}")
    return dataclasses.replace(
        budget,
        probe_lrs=tuple(float(v) for v in budget.probe_lrs),
        probe_depth_lrs=tuple(float(v) for v in budget.probe_depth_lrs),
    )


# ----------------------------------------------------------------------------- train


def arm_overrides(arm: str, seed: int, budget: Budget, shards: Path, run: Path) -> list[str]:
    """Dotted overrides of one trained arm: its base's equal-budget overrides, then its own."""
    from synthssl.train.methods.synthetic_terms import SyntheticTermsConfig

    spec = ARMS[arm]
    fill = {"recipe_property_weight": SyntheticTermsConfig().property_weight, "quarter_steps": budget.steps // 4}
    return train_overrides(spec.base, seed, budget, shards, run) + [item.format(**fill) for item in spec.extra]


def arm_config(arm: str) -> Path:
    """The shipped config an arm starts from."""
    from bench_quality import ARMS as QUALITY_ARMS

    spec = ARMS[arm]
    return ROOT / "train/configs" / (spec.config or QUALITY_ARMS[spec.base][0])


def train_arm(arm: str, seed: int, budget: Budget, shards: Path, run: Path, extra: list[str]) -> float:
    """Train (or resume, or reuse) one arm (`bench_quality.train_budgeted`); its training seconds over
    all attempts. A run made with other settings into the same --out is refused (exit 2), never mixed in."""
    overrides = [*arm_overrides(arm, seed, budget, shards, run), *extra]
    return train_budgeted(arm_config(arm), overrides, run, budget, PROGRAM)


# ----------------------------------------------------------------------------- evaluate


def evaluation_settings(budget: Budget, heldout: Path, real: dict[str, bool]) -> dict:
    """What an evaluation record must match to be reused: the probe settings, the held-out renders' bytes
    and which real data sets were there."""
    keys = [f.name for f in dataclasses.fields(Budget) if f.name.startswith("probe_") or f.name == "real_size"]
    settings = {k: getattr(budget, k) for k in ["image_size", *keys]}
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    return {**settings, "heldout_sha256": shards_sha256(heldout), "real": real}


class DenseEvaluator:
    """Frozen-backbone dense probes on the held-out renders and the real depth sets (module docstring)."""

    def __init__(self, budget: Budget, device, heldout: Path):
        import numpy as np

        from synthssl.train.eval.dense_data import dense_shortfall, load_dense_views
        from synthssl.train.eval.dense_probe_protocol import ProbeProtocol
        from synthssl.train.eval.linear_dense_probe import targets_from_views

        self.budget, self.device = budget, device
        train, test, categories = load_dense_views(
            [heldout], train_scenes=budget.probe_train_scenes, test_scenes=budget.probe_test_scenes, seed=0
        )
        self.notes = [
            n for n in [dense_shortfall(train, test, budget.probe_train_scenes, budget.probe_test_scenes)] if n
        ]
        self.train_rgb, self.test_rgb = train.rgb, test.rgb
        self.train_targets, self.test_targets = targets_from_views(train), targets_from_views(test)
        self.groups = train.scene_index
        self.num_categories = len(categories)
        self.present_categories = sorted(categories[int(c)] for c in np.unique(test.category))
        self.protocol = ProbeProtocol(
            lrs=budget.probe_lrs,
            depth_lrs=budget.probe_depth_lrs,
            steps=budget.probe_steps,
            batch_size=budget.probe_batch,
            val_fraction=budget.probe_val_fraction,
        )
        self.real_size = budget.real_size or 2 * budget.image_size
        self.skipped: dict[str, str] = {}
        self.middlebury = self._middlebury()
        self.castel = self._castel()
        real = {"middlebury": self.middlebury is not None, "castel": self.castel is not None}
        self.settings = evaluation_settings(budget, heldout, real)

    def _middlebury(self):
        """(probe set, original frame) of Middlebury Motorcycle, or None with the reason in ``skipped``."""
        from synthssl.train.eval.middlebury import DEFAULT_ROOT, load_motorcycle
        from synthssl.train.eval.real_depth_probe import real_depth_set

        try:
            frame = load_motorcycle(self.budget.middlebury_root or DEFAULT_ROOT)
        except (FileNotFoundError, ValueError) as exc:
            self.skipped["middlebury"] = str(exc)
            log(f"middlebury skipped: {exc}")
            return None
        return real_depth_set(frame.name, [frame], self.real_size, self.budget.probe_stride), frame

    def _castel(self):
        """(probe-train set, probe-test set, original test frames) of ViSP castel: the first half of the
        frames and the second, or None with the reason in ``skipped``."""
        from synthssl.train.eval.real_depth_probe import real_depth_set

        try:
            from synthssl.train.eval.castel import load_castel
        except ImportError as exc:
            self.skipped["castel"] = f"synthssl.train.eval.castel is not importable ({exc})"
            log(f"castel skipped: {self.skipped['castel']}")
            return None
        try:
            frames = load_castel(self.budget.castel_root)
        except (FileNotFoundError, ValueError) as exc:
            self.skipped["castel"] = str(exc)
            log(f"castel skipped: {exc}")
            return None
        if len(frames) < 4:
            self.skipped["castel"] = f"{len(frames)} frames; the castel probe needs at least 4"
            log(f"castel skipped: {self.skipped['castel']}")
            return None
        half = len(frames) // 2
        frames_set = real_depth_set("visp-castel", frames, self.real_size, self.budget.probe_stride)
        return frames_set.frames(range(half)), frames_set.frames(range(half, len(frames))), frames[half:]

    def metric_names(self, has_heads: bool) -> list[str]:
        names = list(RENDER_METRICS)
        if self.middlebury is not None:
            names.append("middlebury_transfer_absrel")
            names += ["middlebury_zeroshot_absrel"] if has_heads else []
        if self.castel is not None:
            names += ["castel_probe_absrel", "castel_transfer_absrel"]
            names += ["castel_zeroshot_absrel"] if has_heads else []
        return names

    def __call__(self, export: Path, noise_seeds: Sequence[int]) -> dict:
        """{"metrics": flat, "probes": per task learning-rate check and convergence, "details": every score,
        "noise": per render metric the probe-seed values and std (with ``noise_seeds``)}."""
        import numpy as np
        import torch

        from synthssl.train.eval.backbones import load_eval_backbone
        from synthssl.train.eval.dense_probe_protocol import probe_noise, run_protocol
        from synthssl.train.eval.linear_dense_probe import frozen_dense_features, predict_tasks
        from synthssl.train.eval.real_depth_probe import median_scaled_scores

        b = load_eval_backbone(export, export.parent.name)
        encoder = b.encoder.to(self.device)

        def features(rgb: np.ndarray) -> torch.Tensor:
            return frozen_dense_features(
                encoder,
                rgb,
                b.meta["mean"],
                b.meta["std"],
                levels=self.budget.probe_levels,
                feature_stride=self.budget.probe_stride,
                device=self.device,
            )

        def transfer(probe, real_set) -> dict:
            pred = predict_tasks(probe, features(real_set.rgb), real_set.depth.shape[1:], self.device)["depth"]
            return median_scaled_scores(pred.numpy(), real_set.depth)

        result = run_protocol(
            features(self.train_rgb),
            self.train_targets,
            self.groups,
            features(self.test_rgb),
            self.test_targets,
            self.protocol,
            num_categories=self.num_categories,
            noise_seeds=noise_seeds,
            device=self.device,
        )
        metrics = {name: result.metrics[t][k] for name, (t, k) in RENDER_METRICS.items()}
        probes = {
            t: {"lr_check": result.lr_checks[t].as_dict(), "convergence": result.convergence[t]} for t in result.metrics
        }
        details: dict[str, Any] = {"renders": result.metrics}
        record: dict[str, Any] = {}
        if noise_seeds:
            record["noise"] = {
                name: probe_noise([rep[t][k] for rep in result.repeats]) for name, (t, k) in RENDER_METRICS.items()
            }
        if self.middlebury is not None:
            details["middlebury_transfer"] = transfer(result.probe, self.middlebury[0])
            metrics["middlebury_transfer_absrel"] = details["middlebury_transfer"]["abs_rel"]
        if self.castel is not None:
            castel_train, castel_test, _ = self.castel
            details["castel_transfer"] = transfer(result.probe, castel_test)
            metrics["castel_transfer_absrel"] = details["castel_transfer"]["abs_rel"]
            blocks = np.arange(len(castel_train)) * 4 // len(castel_train)  # 4 runs of consecutive frames
            castel = run_protocol(
                features(castel_train.rgb),
                {"depth": torch.from_numpy(castel_train.depth)},
                blocks,
                features(castel_test.rgb),
                {"depth": torch.from_numpy(castel_test.depth)},
                self.protocol,
                device=self.device,
            )
            details["castel_probe"] = castel.metrics["depth"]
            metrics["castel_probe_absrel"] = castel.metrics["depth"]["abs_rel"]
            probes["castel"] = {
                "lr_check": castel.lr_checks["depth"].as_dict(),
                "convergence": castel.convergence["depth"],
            }
        if b.meta.get("heads"):
            details.update(self._zero_shot(export))
            for name in ("middlebury", "castel"):
                if f"{name}_zeroshot" in details:
                    metrics[f"{name}_zeroshot_absrel"] = details[f"{name}_zeroshot"]["abs_rel"]
        return {"metrics": metrics, "probes": probes, "details": details, **record}

    def _zero_shot(self, export: Path) -> dict:
        """The exported heads' depth (``train-ssl predict zero_shot=true``'s code, fed at its default size)
        on the real sets, median-scaled per image; castel on its probe-test frames."""
        from synthssl.train.predict.cli import default_size
        from synthssl.train.predict.model import load_predictor
        from synthssl.train.predict.zero_shot import score_zero_shot_set

        predictor = load_predictor(export, self.device)
        size = default_size(predictor.meta)
        out = {}
        if self.middlebury is not None:
            frames = [self.middlebury[1]]
            out["middlebury_zeroshot"] = score_zero_shot_set(predictor, "middlebury", frames, size, self.device)
        if self.castel is not None:
            scores = score_zero_shot_set(predictor, "castel", self.castel[2], size, self.device)
            out["castel_zeroshot"] = {k: v for k, v in scores.items() if k != "per_image"}
        return out


def noise_seeds_of(arm: str, seed: int, budget: Budget) -> list[int]:
    """The further probe seeds of a run: 1 .. noise_seeds - 1 for seed 0 of the `noise_arms`, else none."""
    return list(range(1, budget.noise_seeds)) if arm in budget.noise_arms and seed == 0 else []


def export_fingerprint(run: Path) -> tuple[str, dict]:
    """(the first 16 hex digits of ``run/export``'s backbone fingerprint, its metadata)."""
    from synthssl.train.eval.feature_cache import backbone_fingerprint
    from synthssl.train.export import load_backbone

    trunk, meta = load_backbone(run / "export")
    return backbone_fingerprint(trunk)[:16], meta


def matching_record(path: Path, fingerprint: str, settings: dict, metric_names: Sequence[str]) -> Optional[dict]:
    """The evaluation record at ``path`` when it was made for the export ``fingerprint`` with ``settings``
    and holds every one of ``metric_names``, else None."""
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if (
        record.get("fingerprint") == fingerprint
        and record.get("settings") == settings
        and set(metric_names) <= set(record["metrics"])
    ):
        return record
    return None


def reusable_record(evaluate: DenseEvaluator, run: Path, noise_seeds: Sequence[int]) -> Optional[dict]:
    """``run/dense_eval.json`` when it holds this export's evaluation (same backbone fingerprint, probe
    settings, held-out bytes and real sets, every metric, the probe-noise refits asked for), else None."""
    if not (run / "dense_eval.json").is_file():
        return None
    fingerprint, meta = export_fingerprint(run)
    names = evaluate.metric_names(bool(meta.get("heads")))
    record = matching_record(run / "dense_eval.json", fingerprint, evaluate.settings, names)
    noise = len((record or {}).get("noise", {}).get("seg_miou", {}).get("values", []))
    if record is None or (noise_seeds and noise != len(noise_seeds) + 1):
        return None
    return record


def evaluate_run(evaluate: DenseEvaluator, run: Path, train_seconds: float, noise_seeds: Sequence[int]) -> dict:
    """Evaluate (or reuse the evaluation of) ``run``'s export; the record lands in ``run/dense_eval.json``."""
    from synthssl.train.export import atomic_write_text

    record = reusable_record(evaluate, run, noise_seeds)
    if record is not None:
        return record
    t0 = time.perf_counter()
    fingerprint, _ = export_fingerprint(run)
    record = {"fingerprint": fingerprint, "settings": evaluate.settings, **evaluate(run / "export", noise_seeds)}
    record.update(train_seconds=train_seconds, eval_seconds=time.perf_counter() - t0)
    atomic_write_text(json.dumps(record, indent=2) + "\n", run / "dense_eval.json")
    return record


GLOBAL_FIELDS = ("image_size", "fmnist_train", "fmnist_test", "patches", "patches_root")


def global_settings(budget: Budget) -> dict:
    """What a global-probe record must match to be reused."""
    return {k: getattr(budget, k) for k in GLOBAL_FIELDS}


def reusable_global(probes: ImageProbes, settings: dict, run: Path) -> Optional[dict]:
    """``run/global_eval.json`` when it holds this export's global probes with ``settings``, else None."""
    if not (run / "global_eval.json").is_file():
        return None
    return matching_record(run / "global_eval.json", export_fingerprint(run)[0], settings, probes.metric_names)


def evaluate_global(probes: ImageProbes, settings: dict, run: Path) -> dict:
    """The global probes (Fashion-MNIST and photo-patches k-NN and linear) of ``run``'s export, or their
    reusable record; the record lands in ``run/global_eval.json``, apart from the dense one, so that
    either can be re-run alone."""
    from synthssl.train.eval.backbones import load_eval_backbone
    from synthssl.train.eval.feature_cache import backbone_fingerprint
    from synthssl.train.export import atomic_write_text

    b = load_eval_backbone(run / "export", run.name)
    fingerprint = backbone_fingerprint(b.encoder)[:16]  # an Encoder has its trunk's fingerprint
    record = matching_record(run / "global_eval.json", fingerprint, settings, probes.metric_names)
    if record is not None:
        return record
    t0 = time.perf_counter()
    metrics = probes(b.encoder.to(probes.device), b.meta)
    record = {"fingerprint": fingerprint, "settings": settings, "metrics": metrics}
    record["eval_seconds"] = time.perf_counter() - t0
    atomic_write_text(json.dumps(record, indent=2) + "\n", run / "global_eval.json")
    return record


def with_global(record: dict, global_record: Optional[dict]) -> dict:
    """The dense record with the global probes' metrics and seconds added (unchanged without them)."""
    if global_record is None:
        return record
    return {
        **record,
        "metrics": {**global_record["metrics"], **record["metrics"]},
        "eval_seconds": record["eval_seconds"] + global_record["eval_seconds"],
    }


def finished_elsewhere(
    evaluate: DenseEvaluator,
    probes: ImageProbes,
    out: Path,
    budget: Budget,
    arms: Sequence[str],
    shards: Path,
    extra: list[str],
) -> dict[str, dict[int, dict]]:
    """The arms not in ``arms`` that an earlier invocation finished in ``out`` with these settings (every
    seed trained with today's resolved training settings and evaluated with today's probe settings), so
    that the report covers all of them: arm -> seed -> record (with the global probes where that
    invocation ran them). Nothing is trained or evaluated here."""
    from bench_runs import SETTINGS_FILE, finished_export, recorded_settings_match

    found: dict[str, dict[int, dict]] = {}
    for arm in [a for a in ARMS_ORDER if a not in arms]:
        records = {}
        for seed in range(budget.random_seeds if arm == "random" else budget.seeds):
            run = out / f"{arm}-seed{seed}"
            if not finished_export(run, 0 if arm == "random" else budget.steps):
                break
            if arm != "random":
                known = run / SETTINGS_FILE
                overrides = [*arm_overrides(arm, seed, budget, shards, run), *extra]
                if not known.is_file() or not recorded_settings_match(
                    json.loads(known.read_text())["settings"], arm_config(arm), overrides
                ):
                    break
            record = reusable_record(evaluate, run, noise_seeds_of(arm, seed, budget))
            if record is None:
                break
            records[seed] = with_global(record, reusable_global(probes, global_settings(budget), run))
        else:
            found[arm] = records
    return found


# ----------------------------------------------------------------------------- main


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--budget", choices=sorted(BUDGETS), default="cpu", help="preset (default cpu)")
    p.add_argument("--out", type=Path, required=True, help="output folder (re-runs reuse what is finished)")
    p.add_argument(
        "--arms",
        default="main",
        help=f"main (default), ablation, all, or a comma-separated subset of {','.join(ARMS_ORDER)}",
    )
    p.add_argument("--seeds", type=int, help="pretraining seeds per trained arm (default: the budget's)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override budget fields")
    p.add_argument(
        "--train-set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="train-ssl overrides for every trained arm (a lever)",
    )
    p.add_argument(
        "--render-set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="render-scenes key=value overrides for the training and held-out renders (a lever)",
    )
    return p.parse_args(argv)


def resolve_arms(spec: str) -> list[str]:
    """The arms of ``--arms`` (a group name or a comma list), in report order; an unknown one exits 2."""
    if spec in ARM_GROUPS:
        return list(ARM_GROUPS[spec])
    arms = [a.strip() for a in spec.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS_ORDER]
    if unknown or not arms:
        fail(f"--arms: unknown arm(s) {unknown}; choose main, ablation, all or from {','.join(ARMS_ORDER)}")
    return [a for a in ARMS_ORDER if a in arms]


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    budget = apply_sets(BUDGETS[args.budget], args.set, PROGRAM)
    if args.seeds is not None:
        if args.seeds < 1:
            fail("--seeds must be >= 1")
        budget = dataclasses.replace(budget, seeds=args.seeds)
    budget = check_budget(budget)
    arms = resolve_arms(args.arms)
    for item in args.train_set + args.render_set:
        if "=" not in item:
            fail(f"--train-set/--render-set {item!r}: expected dotted.key=value")
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
    log(f"budget {args.budget}, arms {','.join(arms)}: {json.dumps(dataclasses.asdict(budget))}")
    shards = out / "data" / "train"
    if any(a not in ("random", "simclr_photos") for a in arms):
        render(shards, budget.scenes, 0, budget, args.render_set)
    heldout = render(
        out / "data" / "heldout", budget.probe_train_scenes + budget.probe_test_scenes, 1, budget, args.render_set
    )
    t0 = time.perf_counter()
    try:
        evaluate = DenseEvaluator(budget, device, heldout)
        probes = ImageProbes(budget, device, out / "cache")
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    log(
        f"probe data: {len(evaluate.train_rgb)} probe-train and {len(evaluate.test_rgb)} probe-test views, "
        f"{len(evaluate.present_categories)} categories in the probe-test set; real sets: "
        f"{', '.join(k for k, v in evaluate.settings['real'].items() if v) or 'none'} "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    runs: dict[str, dict[int, dict]] = {}
    for arm in arms:
        for seed in range(budget.random_seeds if arm == "random" else budget.seeds):
            run = out / f"{arm}-seed{seed}"
            t0 = time.perf_counter()
            if arm == "random":
                random_export(run, seed, budget)
                train_seconds = 0.0
            else:
                log(f"{arm} seed {seed}: training {budget.steps} steps ({time.perf_counter() - t_start:.0f} s so far)")
                train_seconds = train_arm(arm, seed, budget, shards, run, args.train_set)
            record = evaluate_run(evaluate, run, train_seconds, noise_seeds_of(arm, seed, budget))
            record = with_global(record, evaluate_global(probes, global_settings(budget), run))
            runs.setdefault(arm, {})[seed] = record
            m = record["metrics"]
            log(
                f"{arm} seed {seed}: done in {time.perf_counter() - t0:.0f} s (train {train_seconds:.0f} s, "
                f"probes {record['eval_seconds']:.0f} s); " + ", ".join(f"{k} {v:.3g}" for k, v in m.items())
            )
    earlier = finished_elsewhere(evaluate, probes, out, budget, arms, shards, args.train_set)
    if earlier:
        log(f"the report also covers {', '.join(earlier)}, finished in {out} by an earlier invocation")
    merged = {**earlier, **runs}
    runs = {arm: merged[arm] for arm in ARMS_ORDER if arm in merged}
    arms_summary = summarise_arms(runs)
    results = {
        "budget": args.budget,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(budget).items()},
        "arms_run": arms,
        "arms_from_earlier_runs": list(earlier),
        "train_set": args.train_set,
        "render_set": args.render_set,
        "present_categories": evaluate.present_categories,
        "runs": {arm: {str(s): r for s, r in per_seed.items()} for arm, per_seed in runs.items()},
        "arms": arms_summary,
        "pairs": compare_pairs(arms_summary),
        "probe_noise": {
            f"{arm}-seed0": runs[arm][0]["noise"] for arm in runs if 0 in runs[arm] and "noise" in runs[arm][0]
        },
        "skipped": evaluate.skipped,
        "notes": evaluate.notes,
    }
    results["total_seconds"] = time.perf_counter() - t_start  # this invocation (re-runs reuse work)
    results["run_seconds"] = sum(r["train_seconds"] + r["eval_seconds"] for per in runs.values() for r in per.values())
    from synthssl.train.export import atomic_write_text

    atomic_write_text(dense_markdown(results), out / "report.md")
    atomic_write_text(json.dumps(results, indent=2) + "\n", out / "results.json")
    log(f"wrote {out / 'report.md'} and {out / 'results.json'} in {results['total_seconds'] / 60:.1f} min")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
