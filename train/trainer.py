"""The training loop of ``train-ssl``.

`synthssl.train.preflight.prepare` checks a config, the world, the data and a resumed
checkpoint before anything trains, opens the shard collection once and builds the method.
`Trainer(cfg, prepared=...).run()` then trains, after printing the start-up summary (rank 0):

per step: read the step's batch (DataLoader workers only read uint8/float arrays),
augment it on the device (`synthssl.train.data.augment`), forward the method under
autocast, back-propagate ``loss`` into the main parameters and each extra
optimiser's loss into its own parameters, average gradients over ranks, clip, step
every optimiser with the warm-up + cosine learning rate, run the method's
post-step hook, fold the weights into their moving average (``train.ema_decay``); log,
checkpoint, run the online k-NN and finally export the backbone (the averaged weights
when there is an average; `synthssl.train.run_export`).

Every step re-seeds torch's RNG and the augmentation generator from
(seed, rank, step), and the data position is the step (with ``data.stream``, the checkpoint
records the scene stream's position and render config hash), so ``--resume`` continues
exactly (tests/train/test_train_resume.py, tests/train/test_train_stream.py). The learning
rate and ``StepInfo`` follow the current ``train.steps``, so a resumed run whose
``train.steps`` grew continues on the longer schedule (`synthssl.train.resume`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Optional

import torch
import yaml
from torch import Tensor

from synthssl.core.console import ProgressLine, is_tty
from synthssl.core.errors import OutputWriteError
from synthssl.core.folder_lock import FolderInUseError, FolderLock
from synthssl.train import distributed as dist_utils
from synthssl.train.checkpoint import load_method_state, save_checkpoint
from synthssl.train.config import TrainingConfig, to_dict
from synthssl.train.data.batch import ViewBatch
from synthssl.train.data.pipeline import TrainingData, step_seed
from synthssl.train.export import atomic_write_text
from synthssl.train.guards import DivergenceError, DivergenceGuard, StopSignals, shard_fingerprints
from synthssl.train.methods.base import ExtraOptimizer, StepInfo
from synthssl.train.metrics_log import MetricsLogger
from synthssl.train.optim import build_optimizer, lr_factor
from synthssl.train.preflight import (
    Prepared,
    prepare,
    provenance,
    startup_summary,
    startup_warnings,
    summary_lines,
)
from synthssl.train.resume import check_resume
from synthssl.train.run_export import EXPORT_DIR, weight_average_of, write_export

__all__ = ["Trainer", "prepare", "TMP_PATTERNS"]

#: Temporary files an interrupted run can leave in its folder (removed by the next run there).
TMP_PATTERNS = ("*.tmp", f"{EXPORT_DIR}/*.tmp")

log = logging.getLogger("synthssl.train")


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
        self.run_dir = Path(cfg.train.out)
        self.prepared = prepared or prepare(cfg, self.world, resume=resume)
        self.device, self.amp_dtype = self.prepared.device, self.prepared.amp_dtype
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
        self.average = weight_average_of(method, cfg.train.ema_decay)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.start_step = 0
        self.shards = shard_fingerprints(cfg.data.shards) if cfg.data.shards and not cfg.data.photo_pairs else {}
        self.guard = DivergenceGuard(cfg.train.divergence_factor, cfg.train.divergence_window)
        self.resume_plan = None
        self.stream_start: Optional[int] = None
        """the scene stream's position to start at: a resumed checkpoint's (None: from the step)."""
        try:
            if resume:
                self.resume_plan = self.prepared.resume or check_resume(cfg, self.world, self.shards)
                self._load(self.resume_plan.state)
                self.resume_plan.state = None  # loaded: free the CPU copy
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
                stream=self.prepared.stream,
                stream_start=self.stream_start,
            )
        except BaseException:
            if self.prepared.stream is not None:
                self.prepared.stream.close()  # its render workers and shared memory
            raise
        self.photos_skipped = 0
        self._skipped_reported = 0.0
        self._resume = resume

    # ------------------------------------------------------------------ state
    def _load(self, state: dict) -> None:
        """Load a checked checkpoint (`synthssl.train.resume.check_resume`) into the method, optimisers,
        scaler, weight average and divergence guard."""
        load_method_state(self.method, state["method"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            self.average.load_state_dict(state["weight_average"])
        self.start_step = int(state["step"])
        if "stream" in state:  # data.stream: the scenes consumed so far
            self.stream_start = int(state["stream"]["position"])
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
                    **({"stream": self.stream_state(steps_done)} if self.data.stream is not None else {}),
                },
            )
        if dist_utils.is_distributed():
            torch.distributed.barrier()

    def stream_state(self, steps_done: int) -> dict[str, Any]:
        """The scene stream's checkpoint entry after ``steps_done`` steps: its position is the scenes those
        steps consumed (the stream itself may be further on, a batch fetched for a step not taken)."""
        local_batch = self.cfg.data.batch_size // self.world
        start = self.start_step * local_batch if self.stream_start is None else self.stream_start
        return self.data.stream.state(start + (steps_done - self.start_step) * local_batch)

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

    def startup(self) -> dict[str, Any]:
        """The start-up summary and its warnings (`synthssl.train.preflight.startup_summary`), as in config.yaml."""
        summary = startup_summary(self.prepared, self.world, self.start_step)
        summary["lines"] = summary_lines(summary, self.resume_plan)
        summary["warnings"] = startup_warnings(self.cfg)
        return summary

    def _write_config(self, startup: dict[str, Any]) -> None:
        """config.yaml: the resolved config plus a ``provenance`` section (ignored when it is loaded)."""
        if self.rank == 0:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputWriteError(self.run_dir, exc, "create the run folder") from None
            self._remove_leftovers()
            text = yaml.safe_dump(self.config_dict, sort_keys=False)
            text += yaml.safe_dump({"provenance": provenance(self.argv, self.world, startup)}, sort_keys=False)
            atomic_write_text(text, self.run_dir / "config.yaml")

    def _remove_leftovers(self) -> None:
        """Remove temporary files of an interrupted run in this folder (only this run writes here; the
        export folder's are left alone while a ``train-ssl export`` writes there)."""
        patterns = list(TMP_PATTERNS)
        export_dir = self.run_dir / EXPORT_DIR
        if export_dir.is_dir():
            try:
                with FolderLock(export_dir, "train.out"):
                    pass
            except FolderInUseError:
                patterns = [p for p in patterns if not p.startswith(f"{EXPORT_DIR}/")]
        leftovers = sorted(p for pattern in patterns for p in self.run_dir.glob(pattern) if p.is_file())
        for p in leftovers:
            p.unlink(missing_ok=True)
        if leftovers:
            log.info(
                "removed %d temporary file(s) left by an interrupted run: %s",
                len(leftovers),
                ", ".join(p.name for p in leftovers),
            )

    def export(self, steps_done: int) -> Optional[Path]:
        """Write the backbone export (+ the property heads, if any) (rank 0) to <out>/export; returns backbone.pt.
        With train.ema_decay the averaged weights are written, not the last ones. A ``train-ssl export``
        writing there at the same moment is waited for (`synthssl.train.run_export.EXPORT_WAIT_S`)."""
        if self.rank != 0:
            return None
        return write_export(self.method, self.cfg, steps_done, self.run_dir / EXPORT_DIR, self.average)

    def run(self, stop_after: Optional[int] = None) -> Path:
        """Train from the start (or the resumed step) to train.steps; returns the run directory.

        stop_after: stop once this many steps are done *without* checkpointing (tests
        use it to simulate a killed run).
        """
        cfg = self.cfg
        total = cfg.train.steps
        if self._resume and self.start_step >= total:
            if self.rank == 0:
                log.warning(
                    "the run in %s has done all its train.steps=%d; nothing to train (extend it with "
                    "--resume train.steps=N, N > %d)",
                    self.run_dir,
                    total,
                    total,
                )
            self.data.close()
            return self.run_dir
        startup = self.startup()
        if self.rank == 0:
            for line in startup["lines"]:
                log.info("%s", line)
            for line in startup["warnings"]:
                log.warning("warning: %s", line)
        self._write_config(startup)
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
            self.data.close()
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
