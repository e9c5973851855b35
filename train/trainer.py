"""The training loop of ``train-ssl``.

`prepare(cfg)` checks a config against what needs the world (the number of ranks, the
shards and photos) and against the data its method's config says it needs
(``cfg.method.data_needs()``), *before* anything trains (every failure is a
`ConfigError` naming the key and the fix); it opens the shard collection once (handed
to the data pipeline) and builds the method. `Trainer(cfg).run()` then trains:

per step: read the step's batch (DataLoader workers only read uint8/float arrays),
augment it on the device (`synthssl.train.data.augment`), forward the method under
autocast, back-propagate ``loss`` into the main parameters and each extra
optimiser's loss into its own parameters, average gradients over ranks, clip, step
every optimiser with the warm-up + cosine learning rate, run the method's
post-step hook, fold the weights into their moving average (``train.ema_decay``); log,
checkpoint, run the online k-NN and finally export the backbone (the averaged weights
when there is an average).

Every step re-seeds torch's RNG and the augmentation generator from
(seed, rank, step), and the data position is the step, so ``--resume`` continues
exactly (tests/train/test_train_resume.py).
"""

from __future__ import annotations

import contextlib
import logging
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch
import yaml
from torch import Tensor

from synthssl.core.console import ProgressLine, is_tty
from synthssl.core.errors import OutputWriteError
from synthssl.core.version import package_version
from synthssl.train import distributed as dist_utils
from synthssl.train.checkpoint import load_checkpoint, load_method_state, save_checkpoint
from synthssl.train.config import ConfigError, TrainingConfig, parse_config, to_dict
from synthssl.train.data.batch import IMAGENET_MEAN, IMAGENET_STD, ViewBatch
from synthssl.train.data.pipeline import TrainingData, photos_per_rank, step_seed
from synthssl.train.device import resolve_device, resolve_precision
from synthssl.train.export import atomic_write_text, method_heads, save_backbone
from synthssl.train.guards import DivergenceError, DivergenceGuard, StopSignals, fingerprint_changes, shard_fingerprints
from synthssl.train.methods.base import DataNeeds, ExtraOptimizer, Method, MethodContext, StepInfo
from synthssl.train.metrics_log import MetricsLogger
from synthssl.train.momentum.weight_average import WeightAverage
from synthssl.train.optim import build_optimizer, lr_factor

if TYPE_CHECKING:
    from synthssl.dataset.reader import ShardCollection

#: Config keys that may differ between a run and its ``--resume`` (nothing else may).
RESUME_MUTABLE = (
    "log",
    "eval",
    "train.checkpoint_every",
    "train.export",
    "data.workers",
    "data.prefetch_factor",
    "train.compile",
    "train.out",
    "train.divergence_factor",
    "train.divergence_window",
)

#: Temporary files an interrupted run can leave in its folder (removed by the next run there).
TMP_PATTERNS = ("*.tmp", "export/*.tmp")

log = logging.getLogger("synthssl.train")


@dataclass
class Prepared:
    """A checked config with its built method (on CPU), the method's data needs and the opened data.

    shard_size: (height, width) of the shards (None on photo pairs); collection: the training split
    of data.shards, opened once and handed to the data pipeline (None on photo pairs).
    """

    cfg: TrainingConfig
    method: Method
    ctx: MethodContext
    shard_size: Optional[tuple[int, int]]
    needs: DataNeeds
    collection: Optional["ShardCollection"] = None


def _check_world(cfg: TrainingConfig, world: int) -> None:
    """The batch sizes against the number of ranks (the sections check their own values)."""
    d = cfg.data
    if d.batch_size % world:
        raise ConfigError(
            f"data.batch_size: {d.batch_size} is not divisible by the {world} ranks; use a multiple of {world}"
        )
    if d.batch_size // world < 2:
        raise ConfigError(
            f"data.batch_size: need at least 2 view pairs per rank (got {d.batch_size} for "
            f"{world} ranks); contrastive negatives and BatchNorm need a batch"
        )
    if d.real_batch_size % world:
        raise ConfigError(f"data.real_batch_size: {d.real_batch_size} is not divisible by the {world} ranks")


def _check_needs(cfg: TrainingConfig, needs: DataNeeds, world: int = 1) -> None:
    """The data the config gives against what the configured method needs (before anything is opened)."""
    d, name = cfg.data, cfg.method.name
    real_local = photos_per_rank(d, world, needs.real_views) * needs.real_views  # real images per rank
    if needs.real and real_local < needs.real_min:
        raise ConfigError(
            f"data.real_batch_size: {name} as configured needs at least {needs.real_min} real photos "
            f"per rank, got {real_local}; raise data.real_batch_size (0 = data.batch_size)"
        )
    if d.photo_pairs and not d.photos:
        raise ConfigError("data.photos: data.photo_pairs=true trains on photos; set data.photos=DIR")
    if not d.photo_pairs and not d.shards:
        raise ConfigError(
            "data.shards: no shard directories given; set data.shards=[DIR,...] "
            "(render them with render-scenes) or data.photo_pairs=true with data.photos=DIR"
        )
    if needs.geometry and d.photo_pairs:
        raise ConfigError(
            f"method: {name} as configured needs rendered geometry, but data.photo_pairs=true; "
            f"train on data.shards or switch the geometry terms off"
        )
    if needs.two_crops and not d.photo_pairs:
        raise ConfigError(
            f"method.neighbours: {name} as configured relates two crops of one image, but rendered "
            f"pairs come from two cameras; use data.photo_pairs=true (or another neighbour rule)"
        )


def _open_shards(cfg: TrainingConfig, needs: DataNeeds, world: int) -> "ShardCollection":
    """The training split of data.shards, opened once (the data pipeline reads through it)."""
    from synthssl.dataset.reader import ShardCollection
    from synthssl.train.data.scenes import scene_fields

    d = cfg.data
    try:
        collection = ShardCollection(
            list(d.shards),
            split="train" if d.val_fraction > 0 else None,
            val_fraction=d.val_fraction,
            fields=scene_fields(needs.fields),
            allow_missing=d.allow_missing_shards,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"data.shards: {exc}") from exc
    size = (collection.height, collection.width)
    if d.image_size > min(size):
        raise ConfigError(
            f"data.image_size: {d.image_size} px cannot be cropped from shards of "
            f"{size[0]}x{size[1]} px; set data.image_size <= {min(size)} "
            f"or render larger images (render-scenes)"
        )
    if len(collection) == 0:
        raise ConfigError(
            f"data.val_fraction: the training split of {list(map(str, d.shards))} holds no scenes "
            f"(val_fraction={d.val_fraction})"
        )
    if len(collection) < world:
        raise ConfigError(f"data.shards: {len(collection)} scenes cannot be shared by {world} ranks")
    _check_batch_fits(d.batch_size, len(collection), "scene pairs in data.shards (training split)")
    return collection


def prepare(cfg: TrainingConfig, world: int = 1) -> Prepared:
    """Check `cfg` against the world, the data and the method's data needs; open the data once; build the
    method (CPU). Raises ConfigError."""
    from synthssl.train.data.photos import list_photos, photo_decodes
    from synthssl.train.methods.registry import method_class

    _check_world(cfg, world)
    needs = cfg.method.data_needs()  # from the config alone: nothing is built or opened yet
    _check_needs(cfg, needs, world)
    d = cfg.data
    collection = None if d.photo_pairs else _open_shards(cfg, needs, world)
    if needs.real and not d.photos:
        raise ConfigError(
            f"data.photos: {cfg.method.name} as configured needs real photos; set data.photos=DIR "
            f"(e.g. /usr/share/backgrounds) or switch off the terms that use them "
            f"({', '.join(needs.real_off)})"
        )
    if d.photos:
        try:
            photos = list_photos(d.photos)
        except FileNotFoundError as exc:
            raise ConfigError(str(exc)) from exc
        if not any(photo_decodes(p) for p in photos):
            raise ConfigError(
                f"data.photos: none of the {len(photos)} image files under {d.photos} can be "
                f"decoded (corrupt or unreadable); give a folder of readable jpg/png/webp photos"
            )
        if d.photo_pairs:
            _check_batch_fits(d.batch_size, len(photos), f"photos in {d.photos}")
    categories = collection.category_names if collection is not None else []
    ctx = MethodContext(
        arch=cfg.model.arch,
        small_stem=cfg.model.small_stem,
        image_size=d.image_size,
        views=2,
        num_categories=len(categories),
    )
    try:
        cls = method_class(cfg.method.name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    torch.manual_seed(step_seed(cfg.train.seed, 0, -1, "init"))  # same initial weights on every rank
    try:
        method = cls(cfg.method, ctx)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"method: {exc}") from exc
    if cfg.log.wandb:
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise ConfigError(
                "log.wandb: true needs the wandb package (pip install wandb); or set log.wandb=false"
            ) from None
    if cfg.eval.online_knn is not None:
        try:
            from synthssl.train.eval.online import OnlineKNN
        except ImportError as exc:
            raise ConfigError(f"eval.online_knn: the online k-NN module cannot be imported ({exc})") from exc
        try:
            OnlineKNN.from_config(cfg.eval.online_knn)  # validates the section, loads its data once
        except (ValueError, TypeError, FileNotFoundError) as exc:
            raise ConfigError(f"eval.online_knn: {exc}") from exc
    return Prepared(
        cfg, method, ctx, (collection.height, collection.width) if collection is not None else None, needs, collection
    )


def _check_batch_fits(batch: int, available: int, what: str) -> None:
    """A batch larger than the data would repeat items inside one batch: refuse it."""
    if batch > available:
        raise ConfigError(
            f"data.batch_size: {batch} per step but only {available} {what}; a batch would "
            f"repeat items; set data.batch_size <= {available} or add data"
        )


def provenance(argv: Optional[list[str]], world: int) -> dict[str, Any]:
    """What produced a run: package, git commit (when the code is a checkout), torch/CUDA, command, world size."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = (
            subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "synthssl": package_version(),
        "git_commit": commit,
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "command": list(argv) if argv is not None else list(sys.argv),
        "world_size": int(world),
    }


def _saved_config(saved: dict) -> dict:
    """A checkpoint's config as today's engine builds it (keys added since it was written get their
    defaults), as a dict; as saved when it no longer builds (then every key that differs is reported)."""
    try:
        return to_dict(parse_config(saved))
    except ConfigError:
        return saved


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


class Trainer:
    """Trains one configured method; see the module docstring. Rank/world come from torch.distributed."""

    def __init__(
        self,
        cfg: TrainingConfig,
        *,
        resume: bool = False,
        prepared: Optional[Prepared] = None,
        argv: Optional[list[str]] = None,
    ):
        self.rank, self.world = dist_utils.rank(), dist_utils.world_size()
        self.argv = argv
        self.stopped_by: Optional[str] = None
        """the signal's name when SIGTERM/SIGUSR1 stopped `run` early (after a checkpoint)."""
        self.steps_done = 0
        self.cfg = cfg
        self.device = resolve_device(cfg.train.device, "train.device")
        self.amp_dtype = resolve_precision(cfg.train.precision, self.device)
        self.run_dir = Path(cfg.train.out)
        self.prepared = prepared or prepare(cfg, self.world)
        method = self.prepared.method
        if self.world > 1 and cfg.model.sync_bn:
            dist_utils.convert_to_global_bn(method)
        method.to(self.device)
        if cfg.model.channels_last:
            method.to(memory_format=torch.channels_last)
        dist_utils.broadcast_module(method)
        self.method = method
        if cfg.train.compile:
            # Each sub-module (trunk, heads) is compiled in place: state_dict keys are unchanged and
            # the per-step Python values (StepInfo, ramps) stay outside the compiled graphs.
            for child in method.children():
                child.compile()
        self.extras: list[ExtraOptimizer] = method.extra_optimizers()
        extra_ids = {id(p) for ex in self.extras for p in ex.params}
        named_main = [(n, p) for n, p in method.named_parameters() if p.requires_grad and id(p) not in extra_ids]
        self.main_params = [p for _, p in named_main]
        self.optimizers: dict[str, torch.optim.Optimizer] = {"main": build_optimizer(named_main, cfg.optim)}
        for ex in self.extras:
            if ex.name in self.optimizers:
                raise ValueError(f"method: extra optimiser name {ex.name!r} is used twice (or is 'main')")
            self.optimizers[ex.name] = torch.optim.AdamW(
                ex.params,
                lr=ex.lr,
                betas=ex.betas,
                weight_decay=ex.weight_decay,
                fused=self.device.type in ("cpu", "cuda"),
            )
        self.base_lrs = {name: [g["lr"] for g in o.param_groups] for name, o in self.optimizers.items()}
        self.average = self._weight_average()
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.start_step = 0
        self.shards = shard_fingerprints(cfg.data.shards) if cfg.data.shards and not cfg.data.photo_pairs else {}
        self.guard = DivergenceGuard(cfg.train.divergence_factor, cfg.train.divergence_window)
        if resume:
            self._load(load_checkpoint(self.run_dir, map_location=self.device))
        self.steps_done = self.start_step
        self.config_dict = to_dict(cfg)
        needs = self.prepared.needs
        self.data = TrainingData(
            cfg,
            needs_real=needs.real,
            real_views=needs.real_views,
            rank=self.rank,
            world=self.world,
            device=self.device,
            start_step=self.start_step,
            fields=needs.fields,
            collection=self.prepared.collection,
        )
        self.photos_skipped = 0
        self._skipped_reported = 0.0
        self._resume = resume

    # ------------------------------------------------------------------ state
    def _load(self, state: dict) -> None:
        diffs = [
            k
            for k in _differences(_saved_config(state["config"]), to_dict(self.cfg))
            if not any(k == m or k.startswith(m + ".") for m in RESUME_MUTABLE)
        ]
        if diffs:
            raise ConfigError(
                f"--resume: the config differs from the checkpoint's in {diffs}; resume with "
                f"the run's own config ({self.run_dir / 'config.yaml'})"
            )
        changed = fingerprint_changes(state["shards"], self.shards)
        if changed:
            raise ConfigError(
                f"--resume: the shards differ from those the checkpoint trained on ({changed[0]}"
                f"{f' and {len(changed) - 1} more' if len(changed) > 1 else ''}: replaced, added or "
                f"removed); resume on the original shards or start a new run"
            )
        if state["world_size"] != self.world:
            raise ConfigError(
                f"--resume: the checkpoint was written with {state['world_size']} ranks, this run "
                f"has {self.world}; resume with the same number of processes"
            )
        load_method_state(self.method, state["method"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            self.average.load_state_dict(state["weight_average"])
        self.start_step = int(state["step"])
        self.guard = DivergenceGuard(
            self.cfg.train.divergence_factor, self.cfg.train.divergence_window, state.get("divergence_reference")
        )

    def save(self, steps_done: int) -> None:
        """Checkpoint after `steps_done` steps (rank 0 writes; all ranks wait). Weights that are no
        longer finite are never saved over the last good checkpoint (DivergenceError)."""
        named = list(self.method.named_parameters())
        finite = torch.stack([torch.isfinite(p).all() for _, p in named]).cpu()  # one device sync
        if not bool(finite.all()):
            bad = named[int((~finite).nonzero()[0])][0]
            raise DivergenceError(
                f"step {steps_done}: parameter '{bad}' holds non-finite values; training "
                f"diverged (the last good checkpoint is kept); lower optim.lr or set "
                f"optim.grad_clip"
            )
        if self.rank == 0:
            save_checkpoint(
                self.run_dir,
                step=steps_done,
                method=self.method,
                optimizers=self.optimizers,
                scaler=self.scaler,
                config=self.config_dict,
                world_size=self.world,
                extra={
                    "shards": self.shards,
                    "divergence_reference": self.guard.state(),
                    **({"weight_average": self.average.state_dict()} if self.average else {}),
                },
            )
        if dist_utils.is_distributed():
            torch.distributed.barrier()

    # ------------------------------------------------------------------ step
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _set_lr(self, step: int) -> float:
        o = self.cfg.optim
        factor = lr_factor(step, self.cfg.train.steps, o.warmup_steps, o.min_lr_ratio)
        for group, base in zip(self.optimizers["main"].param_groups, self.base_lrs["main"]):
            group["lr"] = base * factor
        return self.base_lrs["main"][0] * factor

    def compute_gradients(self, batch: ViewBatch, info: StepInfo) -> dict[str, Tensor]:
        """Forward + backward of one step; gradients averaged over ranks. Returns the detached terms."""
        with self._autocast():
            out = self.method(batch, info)
        if "loss" not in out:
            raise KeyError(f"{type(self.method).__name__}.forward must return the total under 'loss'")
        scale = self.scaler.scale if self.scaler is not None else (lambda x: x)
        for ex in self.extras:
            if ex.loss_key not in out:
                raise KeyError(
                    f"{type(self.method).__name__}.forward did not return {ex.loss_key!r} "
                    f"for extra optimiser {ex.name!r}"
                )
            scale(out[ex.loss_key]).backward(inputs=ex.params, retain_graph=True)
        scale(out["loss"]).backward(inputs=self.main_params)
        dist_utils.all_reduce_gradients(list(self.method.parameters()))
        return {k: v.detach() for k, v in out.items()}

    def optimizer_step(self, step: int) -> float:
        """Clip, schedule and step every optimiser; returns the main lr used."""
        if self.scaler is not None:
            for opt in self.optimizers.values():
                self.scaler.unscale_(opt)
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.main_params, self.cfg.optim.grad_clip)
        lr = self._set_lr(step)
        for opt in self.optimizers.values():
            if self.scaler is not None:
                self.scaler.step(opt)
            else:
                opt.step()
        if self.scaler is not None:
            self.scaler.update()
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        return lr

    def train_step(self, batch: ViewBatch, step: int) -> tuple[dict[str, Tensor], float]:
        """One full optimiser step on `batch` (already augmented, on the device)."""
        info = StepInfo(step, self.cfg.train.steps)
        terms = self.compute_gradients(batch, info)
        lr = self.optimizer_step(step)
        with torch.no_grad():
            self.method.after_optimizer_step(info)
        if self.average is not None:
            self.average.update()
        return terms, lr

    def fit_step(self, step: int) -> tuple[dict[str, Tensor], float]:
        """Step `step` of training: re-seed, read and augment its batch, train on it."""
        torch.manual_seed(step_seed(self.cfg.train.seed, self.rank, step, "torch"))
        batch, skipped = self.data.next_batch(step)
        self.photos_skipped += skipped
        return self.train_step(batch, step)

    # ------------------------------------------------------------------ loop
    def _online_knn(self) -> dict[str, float]:
        from synthssl.train.eval.online import OnlineKNN

        results: dict[str, float] = {}
        if self.rank == 0:
            backbone = self.method.encoder
            was_training = backbone.training
            backbone.eval()
            with torch.no_grad():
                results = OnlineKNN.from_config(self.cfg.eval.online_knn).evaluate(backbone, self.device)
            backbone.train(was_training)
        if dist_utils.is_distributed():
            torch.distributed.barrier()
        return {f"knn/{k}": float(v) for k, v in results.items()}

    def _write_config(self) -> None:
        """config.yaml: the resolved config plus a ``provenance`` section (ignored when it is loaded)."""
        if self.rank == 0:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputWriteError(self.run_dir, exc, "create the run folder") from None
            self._remove_leftovers()
            text = yaml.safe_dump(self.config_dict, sort_keys=False)
            text += yaml.safe_dump({"provenance": provenance(self.argv, self.world)}, sort_keys=False)
            atomic_write_text(text, self.run_dir / "config.yaml")

    def _remove_leftovers(self) -> None:
        """Remove temporary files of an interrupted run in this folder (only this run writes here)."""
        leftovers = sorted(p for pattern in TMP_PATTERNS for p in self.run_dir.glob(pattern) if p.is_file())
        for p in leftovers:
            p.unlink(missing_ok=True)
        if leftovers:
            log.info(
                "removed %d temporary file(s) left by an interrupted run: %s",
                len(leftovers),
                ", ".join(p.name for p in leftovers),
            )

    def _weight_average(self) -> Optional[WeightAverage]:
        """The EMA of the encoder and property heads that `export` writes (train.ema_decay > 0), else None."""
        if self.cfg.train.ema_decay <= 0:
            return None
        modules = {"encoder": self.method.encoder}
        heads = method_heads(self.method)
        if heads is not None:
            modules["heads"] = heads
        return WeightAverage(modules, self.cfg.train.ema_decay)

    def export(self, steps_done: int) -> Optional[Path]:
        """Write the backbone export (+ the property heads, if any) (rank 0) to <out>/export; returns backbone.pt.
        With train.ema_decay the averaged weights are written, not the last ones."""
        if self.rank != 0:
            return None
        with self.average.applied() if self.average is not None else contextlib.nullcontext():
            return save_backbone(
                self.method.encoder,
                self.run_dir / "export",
                arch=self.cfg.model.arch,
                small_stem=self.cfg.model.small_stem,
                image_size=self.cfg.data.image_size,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                method=self.cfg.method.name,
                steps=steps_done,
                heads=method_heads(self.method),
            )

    def run(self, stop_after: Optional[int] = None) -> Path:
        """Train from the start (or the resumed step) to train.steps; returns the run directory.

        stop_after: stop once this many steps are done *without* checkpointing (tests
        use it to simulate a killed run).
        """
        cfg = self.cfg
        total = cfg.train.steps
        self._write_config()
        logger = (
            MetricsLogger(
                self.run_dir,
                cfg.log.tensorboard,
                resume_step=self.start_step if self._resume else None,
                wandb_config=self.config_dict if cfg.log.wandb else None,
            )
            if self.rank == 0
            else None
        )
        bar = None
        progress = ProgressLine(total, self.start_step, unit="step")
        if self.rank == 0 and cfg.log.progress and is_tty():  # off a terminal: plain lines at log.every
            from tqdm import tqdm

            bar = tqdm(
                total=total, initial=self.start_step, desc=f"train {cfg.method.name}", unit="step", dynamic_ncols=True
            )
        images_per_step = cfg.data.batch_size * 2
        self.method.train()
        step = self.start_step
        window_start, window_steps = time.perf_counter(), 0
        signals = StopSignals().install()
        try:
            while step < total:
                if stop_after is not None and step >= stop_after:
                    return self.run_dir
                terms, lr = self.fit_step(step)
                step += 1
                self.steps_done = step
                window_steps += 1
                if bar is not None:
                    bar.update(1)
                last = step == total
                logged = step % cfg.log.every == 0 or last
                checkpoint = last or bool(cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0)
                stop = self._stop_requested(signals)
                if logged or checkpoint or stop:
                    record = self._reduce(terms)
                    self.guard.check(step, {k: v for k, v in record.items() if k != "photos_skipped"})
                if logged:
                    self._log(logger, bar, progress, step, record, lr, window_start, window_steps, images_per_step)
                    window_start, window_steps = time.perf_counter(), 0
                if cfg.eval.online_knn is not None and step % cfg.eval.every_steps == 0:
                    knn = self._online_knn()
                    if logger is not None and knn:
                        logger.log(step, knn)
                if checkpoint or stop:
                    self.save(step)
                if stop and not last:
                    self.stopped_by = stop
                    return self.run_dir
        except KeyboardInterrupt:
            # Between steps the state is consistent: keep what was done.
            if step > self.start_step:
                self.save(step)
            raise
        finally:
            signals.restore()
            if bar is not None:
                bar.close()
            if logger is not None:
                logger.close()
        if cfg.train.export:
            self.export(step)
        return self.run_dir

    def _stop_requested(self, signals: StopSignals) -> Optional[str]:
        """The name of a stop signal received by any rank since the last step, else None."""
        received = signals.received
        if dist_utils.is_distributed():  # every rank stops at the same step
            flag = torch.tensor([1.0 if received else 0.0], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() > 0:
                return received or "SIGTERM"
        return received

    def _reduce(self, terms: dict[str, Tensor]) -> dict[str, float]:
        """The step's loss terms averaged over ranks, plus ``photos_skipped`` (summed over ranks)."""
        keys = sorted(terms)
        device = terms["loss"].device
        values = torch.stack([terms[k].to(device, torch.float32).reshape(()) for k in keys])
        skipped = torch.tensor([float(self.photos_skipped)], device=values.device)
        values = dist_utils.all_reduce_mean(torch.cat([values, skipped])).cpu().tolist()
        record = dict(zip(keys, values[:-1]))
        record["photos_skipped"] = values[-1] * self.world
        return record

    def _log(
        self,
        logger: Optional[MetricsLogger],
        bar: Any,
        progress: ProgressLine,
        step: int,
        reduced: dict[str, float],
        lr: float,
        window_start: float,
        window_steps: int,
        images_per_step: int,
    ) -> None:
        """metrics.jsonl + TensorBoard, and the bar (terminal) or one plain progress line (rank 0)."""
        elapsed = max(time.perf_counter() - window_start, 1e-9)
        record = dict(reduced)
        record["lr"] = lr
        record["images_per_s"] = window_steps * images_per_step / elapsed
        if logger is None:
            return
        logger.log(step, record)
        if record["photos_skipped"] > self._skipped_reported:
            log.warning(
                "step %d: %.0f unreadable photo reads skipped so far under %s (see photos_skipped in metrics.jsonl)",
                step,
                record["photos_skipped"],
                self.cfg.data.photos,
            )
            self._skipped_reported = record["photos_skipped"]
        if bar is not None:
            bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_s']:.0f}")
            return
        terms = "  ".join(f"{k} {v:.4g}" for k, v in sorted(reduced.items()) if k != "photos_skipped")
        log.info("%s", progress.line(step, f"{terms}  {record['images_per_s']:.3g} images/s"))
