"""Pre-flight checks of a training run: everything that can fail is checked before the first step.

`prepare(cfg, world)` checks, in this order, and raises `ConfigError` (one line naming the key and
the fix) at the first failure, before the model is built or any data is read for training:

1. configuration against the world: batch sizes against the number of ranks (`check_world`);
2. the device and precision (`synthssl.train.device`);
3. with ``resume``, the checkpoint against the config (`synthssl.train.resume.check_resume`);
4. the data the method needs (``cfg.method.data_needs()``) against the data the config gives
   (`check_needs`);
5. the shards: opened once as the training split, image size and split size (`open_shards`); or,
   with ``data.stream``, the render workers: started once, the render config they resolve, image
   size, shared memory, and a resumed run's render config against its checkpoint's (`open_stream`);
6. the photos: found, at least one decodes, unreadable ones counted (`count_photos`);
7. batch fit: a batch never repeats an item (`check_batch_fits`);
8. optional packages and sections (wandb, the online k-NN).

It then builds the method on the CPU and returns everything as `Prepared`. `startup_summary`
and `startup_warnings` describe the run in a few plain lines (printed by rank 0 before step 1
and written into ``config.yaml``'s provenance with `provenance`).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch

from synthssl.core.version import package_version
from synthssl.train.config import ConfigError, TrainingConfig
from synthssl.train.data.pipeline import photos_per_rank, step_seed
from synthssl.train.device import resolve_device, resolve_precision
from synthssl.train.methods.base import DataNeeds, Method, MethodContext
from synthssl.train.optim import lr_factor
from synthssl.train.resume import ResumePlan, check_resume

if TYPE_CHECKING:
    from synthssl.dataset.reader import ShardCollection
    from synthssl.train.data.stream import SceneStream

__all__ = [
    "Prepared",
    "PhotoCount",
    "prepare",
    "check_world",
    "check_needs",
    "check_photos_needed",
    "open_shards",
    "open_stream",
    "count_photos",
    "check_batch_fits",
    "startup_summary",
    "startup_warnings",
    "summary_lines",
    "provenance",
    "MIN_BATCH",
    "PHOTOS_CHECKED",
]

#: The smallest batch of view pairs (contrastive negatives and BatchNorm need a batch).
MIN_BATCH = 2
#: At most this many photos are decoded before training (spread over the sorted list) to count unreadable ones.
PHOTOS_CHECKED = 2000


@dataclass(frozen=True)
class PhotoCount:
    """The photos of ``data.photos``: ``found`` files, of which ``checked`` were decoded and ``unreadable`` failed
    (they are skipped while training and counted as ``photos_skipped``)."""

    found: int
    checked: int
    unreadable: int


@dataclass
class Prepared:
    """A checked config with its built method (on CPU), the method's data needs and the opened data.

    shard_size: (height, width) of the shards or the streamed scenes (None on photo pairs);
    collection: the training split of data.shards, opened once and handed to the data pipeline
    (None on photo pairs and streams); device and amp_dtype: where and in which autocast precision
    it trains (None = fp32); photos: the photo count (None without data.photos); resume: the checked
    checkpoint of a ``--resume`` (else None); stream: the started scene stream of ``data.stream``
    (else None), whose workers the data pipeline takes over (and stops).
    """

    cfg: TrainingConfig
    method: Method
    ctx: MethodContext
    shard_size: Optional[tuple[int, int]]
    needs: DataNeeds
    collection: Optional["ShardCollection"] = None
    device: torch.device = torch.device("cpu")
    amp_dtype: Optional[torch.dtype] = None
    photos: Optional[PhotoCount] = None
    resume: Optional[ResumePlan] = None
    stream: Optional["SceneStream"] = None


def check_world(cfg: TrainingConfig, world: int) -> None:
    """The batch sizes against the number of ranks (the sections check their own values)."""
    d = cfg.data
    if d.batch_size % world:
        raise ConfigError(
            f"data.batch_size: {d.batch_size} is not divisible by the {world} ranks; use a multiple of {world}"
        )
    if d.batch_size // world < MIN_BATCH:
        raise ConfigError(
            f"data.batch_size: need at least {MIN_BATCH} view pairs per rank (got {d.batch_size} for "
            f"{world} ranks); contrastive negatives and BatchNorm need a batch"
        )
    if d.real_batch_size % world:
        raise ConfigError(f"data.real_batch_size: {d.real_batch_size} is not divisible by the {world} ranks")


def check_needs(cfg: TrainingConfig, needs: DataNeeds, world: int = 1) -> None:
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
    if not d.photo_pairs and not d.shards and d.stream is None:
        raise ConfigError(
            "data.shards: no shard directories given; set data.shards=[DIR,...] "
            "(render them with render-scenes), data.stream=RENDER_CONFIG to render scenes while training, "
            "or data.photo_pairs=true with data.photos=DIR"
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


def check_photos_needed(cfg: TrainingConfig, needs: DataNeeds) -> None:
    """A method that needs real photos has ``data.photos`` (checked after the shards, which name their errors first)."""
    if needs.real and not cfg.data.photos:
        raise ConfigError(
            f"data.photos: {cfg.method.name} as configured needs real photos; set data.photos=DIR "
            f"(e.g. /usr/share/backgrounds) or switch off the terms that use them "
            f"({', '.join(needs.real_off)})"
        )


def open_shards(cfg: TrainingConfig, needs: DataNeeds, world: int) -> "ShardCollection":
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
    check_batch_fits(
        d.batch_size,
        len(collection),
        "scene pairs in data.shards (training split)",
        "data.shards",
        "the training split of data.shards",
    )
    return collection


def open_stream(
    cfg: TrainingConfig,
    needs: DataNeeds,
    world: int,
    rank: int = 0,
    plan: Optional[ResumePlan] = None,
    device: torch.device = torch.device("cpu"),
) -> "SceneStream":
    """``data.stream``'s render workers, started (`synthssl.train.data.stream.SceneStream`): the render config
    resolved by them (ConfigError naming data.stream), the image size, the shared memory, and with
    ``plan`` the render config's hash against the one the checkpoint trained on."""
    from synthssl.train.data.scenes import scene_fields
    from synthssl.train.data.stream import SceneStream

    d = cfg.data
    stream = SceneStream(
        d.stream,
        d.stream_set,
        workers=d.stream_workers,
        fields=[f for f in scene_fields(needs.fields) if f != "rgb"],
        batch=d.batch_size // world,
        rank=rank,
        world=world,
        pair_seed=cfg.train.seed,
        pin=device.type == "cuda",
    )
    try:
        size = stream.info.size
        if d.image_size > size:
            raise ConfigError(
                f"data.image_size: {d.image_size} px cannot be cropped from the {size}x{size} px scenes of "
                f"data.stream={d.stream}; set data.image_size <= {size} or render larger scenes "
                f"(data.stream_set=[size={d.image_size}])"
            )
        recorded = plan.state.get("stream") if plan is not None and plan.state is not None else None
        if recorded is not None and recorded.get("config_hash") != stream.info.config_hash:
            raise ConfigError(
                f"--resume: data.stream={d.stream} now renders other scenes than the checkpoint trained on "
                f"(render config hash {str(recorded.get('config_hash'))[:16]}, now {stream.info.render_id}: the "
                f"YAML file or the package's render defaults changed); resume with the original render config, "
                f"or start a new run (another train.out=DIR, or --overwrite)"
            )
    except BaseException:
        stream.close()
        raise
    return stream


def count_photos(folder: str) -> PhotoCount:
    """Find the photos under ``folder`` and decode up to `PHOTOS_CHECKED` of them (spread over the sorted
    list); ConfigError when there are none or none of them decodes."""
    from synthssl.train.data.photos import list_photos, photo_decodes

    try:
        photos = list_photos(folder)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    picks = np.unique(np.linspace(0, len(photos) - 1, min(len(photos), PHOTOS_CHECKED)).round().astype(int))
    readable = sum(photo_decodes(photos[i]) for i in picks)
    checked = set(picks.tolist())
    if readable == 0 and not any(photo_decodes(p) for i, p in enumerate(photos) if i not in checked):
        raise ConfigError(
            f"data.photos: none of the {len(photos)} image files under {folder} can be "
            f"decoded (corrupt or unreadable); give a folder of readable jpg/png/webp photos"
        )
    return PhotoCount(len(photos), len(picks), len(picks) - readable)


def check_batch_fits(batch: int, available: int, what: str, data_key: str, where: str) -> None:
    """A batch larger than the data would repeat items inside one batch: refuse it, with advice that a
    valid config can follow (never a batch below `MIN_BATCH`: then the data is too small, named by
    ``data_key``, and ``where`` is what holds it)."""
    if available < MIN_BATCH:
        raise ConfigError(
            f"{data_key}: a batch needs at least {MIN_BATCH} different items (data.batch_size >= {MIN_BATCH}), "
            f"and {where} holds {available}; add data"
        )
    if batch > available:
        raise ConfigError(
            f"data.batch_size: {batch} per step but only {available} {what}; a batch would "
            f"repeat items; set data.batch_size <= {available} or add data"
        )


def prepare(cfg: TrainingConfig, world: int = 1, *, resume: bool = False, rank: Optional[int] = None) -> Prepared:
    """Check `cfg` (see the module docstring), open the data once, build the method (CPU). Raises ConfigError.

    resume: also read and check ``train.out``'s checkpoint (`Prepared.resume`); rank: this process's
    rank (its share of a ``data.stream``'s scenes; default: torch.distributed's rank).
    """
    from synthssl.train.distributed import rank as process_rank
    from synthssl.train.methods.registry import method_class

    check_world(cfg, world)
    device = resolve_device(cfg.train.device, "train.device")
    amp_dtype = resolve_precision(cfg.train.precision, device)
    plan = check_resume(cfg, world) if resume else None
    needs = cfg.method.data_needs()  # from the config alone: nothing is built or opened yet
    check_needs(cfg, needs, world)
    d = cfg.data
    collection = None if d.photo_pairs or d.stream is not None else open_shards(cfg, needs, world)
    check_photos_needed(cfg, needs)
    photos = count_photos(d.photos) if d.photos else None
    if photos is not None and d.photo_pairs:
        check_batch_fits(d.batch_size, photos.found, f"photos in {d.photos}", "data.photos", str(d.photos))
    try:
        cls = method_class(cfg.method.name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
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
    if d.stream is not None:  # the last check: it starts the render workers
        rank = process_rank() if rank is None else rank
        stream: Optional["SceneStream"] = open_stream(cfg, needs, world, rank, plan, device)
    else:
        stream = None
    try:
        if stream is not None:
            categories = stream.info.category_names
            size: Optional[tuple[int, int]] = (stream.info.size, stream.info.size)
        else:
            categories = collection.category_names if collection is not None else []
            size = (collection.height, collection.width) if collection is not None else None
        ctx = MethodContext(
            arch=cfg.model.arch,
            small_stem=cfg.model.small_stem,
            image_size=d.image_size,
            views=2,
            num_categories=len(categories),
        )
        torch.manual_seed(step_seed(cfg.train.seed, 0, -1, "init"))  # same initial weights on every rank
        try:
            method = cls(cfg.method, ctx)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"method: {exc}") from exc
    except BaseException:
        if stream is not None:
            stream.close()
        raise
    return Prepared(cfg, method, ctx, size, needs, collection, device, amp_dtype, photos, plan, stream)


def _precision_name(amp_dtype: Optional[torch.dtype]) -> str:
    return {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast + loss scaling"}[amp_dtype]


def startup_summary(prepared: Prepared, world: int, start_step: int = 0) -> dict[str, Any]:
    """What the run is about to do, as plain values (``provenance.startup`` of config.yaml; `summary_lines`)."""
    cfg, d, o = prepared.cfg, prepared.cfg.data, prepared.cfg.optim
    steps = cfg.train.steps
    summary: dict[str, Any] = {
        "device": str(prepared.device),
        "precision": _precision_name(prepared.amp_dtype),
        "world_size": int(world),
    }
    collection = prepared.collection
    if collection is not None:
        from synthssl.dataset.layout import find_shard_roots

        summary["shard_folders"] = len(find_shard_roots(list(d.shards)))
        summary["shards"] = len(collection.shard_paths)
        summary["scenes"] = len(collection)
        summary["scenes_skipped"] = int(collection.skipped_scenes)
    if prepared.stream is not None:
        info = prepared.stream.info
        summary["stream"] = {
            "render": d.stream,
            "overrides": list(d.stream_set),
            "workers_per_rank": d.stream_workers,
            "size": info.size,
            "views": info.views,
            "seed": info.seed,
            "render_id": info.render_id,
            "physics": info.physics,
        }
    if prepared.photos is not None:
        summary["photos"] = prepared.photos.found
        summary["photos_checked"] = prepared.photos.checked
        summary["photos_unreadable"] = prepared.photos.unreadable
    real = (d.real_batch_size or d.batch_size) if prepared.needs.real else 0
    summary["batch"] = {"view_pairs": d.batch_size, "per_rank": d.batch_size // world, "real_photos": real}
    peak_step = min(o.warmup_steps, steps)  # steps done when the lr is highest
    summary["steps"] = steps
    summary["start_step"] = int(start_step)
    summary["optimiser"] = o.name
    summary["lr"] = {
        "warmup_steps": o.warmup_steps,
        "peak": o.lr * lr_factor(max(peak_step - 1, 0), steps, o.warmup_steps, o.min_lr_ratio),
        "peak_step": max(peak_step, 1),
        "end": o.lr * lr_factor(steps - 1, steps, o.warmup_steps, o.min_lr_ratio),
    }
    summary["out"] = str(cfg.train.out)
    return summary


def summary_lines(summary: dict[str, Any], resume: Optional[ResumePlan] = None) -> list[str]:
    """The start-up summary as a few plain lines (rank 0 prints them before step 1)."""
    s = summary
    ranks = f"{s['world_size']} rank{'s' if s['world_size'] != 1 else ''}"
    lines = [f"device {s['device']}, precision {s['precision']}, {ranks}"]
    data = []
    if "scenes" in s:
        skipped = f", {s['scenes_skipped']} skipped (missing shards)" if s["scenes_skipped"] else ""
        data.append(
            f"{s['scenes']} scenes in {s['shards']} shards of {s['shard_folders']} folder"
            f"{'s' if s['shard_folders'] != 1 else ''}{skipped}"
        )
    if "stream" in s:
        st = s["stream"]
        given = " ".join([st["render"], *st["overrides"]])
        workers = st["workers_per_rank"]
        data.append(
            f"scenes rendered while training from {given} ({st['size']} px, {st['views']} views, seed {st['seed']}, "
            f"render id {st['render_id']}{'' if st['physics'] else ', no physics'}) by {workers} render "
            f"worker{'s' if workers != 1 else ''} per rank, each scene once"
        )
    if "photos" in s:
        sample = "" if s["photos_checked"] == s["photos"] else f" of {s['photos_checked']} checked"
        data.append(f"{s['photos']} photos ({s['photos_unreadable']}{sample} unreadable, skipped while training)")
    if data:
        lines.append("data: " + "; ".join(data))
    b = s["batch"]
    real = f", {b['real_photos']} real photos" if b["real_photos"] else ""
    lines.append(f"batch: {b['view_pairs']} view pairs per step ({b['per_rank']} per rank){real}")
    lr = s["lr"]
    start = f", from step {s['start_step']}" if s["start_step"] else ""
    if lr["warmup_steps"] >= s["steps"]:
        shape = f"lr warm-up {lr['warmup_steps']} steps (the whole run), highest {lr['peak']:.4g} at step {s['steps']}"
    else:
        shape = (
            f"lr warm-up {lr['warmup_steps']} steps, peak {lr['peak']:.4g} at step {lr['peak_step']}, "
            f"cosine to {lr['end']:.4g} at step {s['steps']}"
        )
    lines.append(f"schedule: {s['steps']} steps{start}, {s['optimiser']}, {shape}")
    if resume is not None:
        lines.append(f"resume: {resume.steps_done} steps done")
        lines += [f"resume: {change}" for change in resume.changes]
    lines.append(f"output: {s['out']}")
    return lines


def startup_warnings(cfg: TrainingConfig) -> list[str]:
    """One line for each setting that makes the run other than it probably means to be."""
    o, t = cfg.optim, cfg.train
    out = []
    if o.warmup_steps > t.steps:
        top = o.lr * lr_factor(t.steps - 1, t.steps, o.warmup_steps, o.min_lr_ratio)
        out.append(
            f"optim.warmup_steps: the warm-up ({o.warmup_steps} steps) is longer than the run (train.steps="
            f"{t.steps}): the learning rate peaks at {top:.4g} and never reaches optim.lr={o.lr:g}; lower "
            f"optim.warmup_steps or raise train.steps"
        )
    if t.checkpoint_every > t.steps:
        out.append(
            f"train.checkpoint_every: {t.checkpoint_every} is longer than the run (train.steps={t.steps}): the "
            f"only checkpoint is the one at the end (Ctrl-C and SIGTERM write one too); lower it to resume "
            f"from earlier steps"
        )
    return out


def provenance(argv: Optional[list[str]], world: int, startup: Optional[dict] = None) -> dict[str, Any]:
    """What produced a run: package, git commit (when the code is a checkout), torch/CUDA, command, world size,
    and the start-up summary (``startup``: `startup_summary` with its ``lines`` and ``warnings``)."""
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
    out = {
        "synthssl": package_version(),
        "git_commit": commit,
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "command": list(argv) if argv is not None else list(sys.argv),
        "world_size": int(world),
    }
    if startup is not None:
        out["startup"] = startup
    return out
