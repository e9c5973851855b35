"""Render a dataset: ready the folder, decide what to render, hand shards to workers, merge the manifest.

`render_dataset` runs one job of a render (``shard_index`` of ``num_shards``) into ``cfg.out``:

0. `~synthssl.render.preflight.check_before_render`: the checks that need no rendering (the
   output folder is writable, the photo folder holds decodable photos) run before anything
   is written;
1. `~synthssl.render.provenance.provenance_of`: what the render is (config hash, render id,
   asset set), written into every shard and into the folder's ``identity.json``;
2. `~synthssl.render.resume.prepare_folder` and `~synthssl.render.resume.shards_to_render`:
   the folder is claimed for this render, and the planned shards that are not finished (or
   fail verification on ``resume``) are the work; a run that ends before any shard is in the
   folder (a failure, Ctrl-C) releases the claim, leaving the folder as it was found;
3. the unit of work is a shard: a worker renders its scenes, writes them (temporary file, then
   rename) and the shard's sidecar (`~synthssl.render.shard_worker.ShardWorker`), in spawned
   processes (`~synthssl.render.worker_pool.WorkerPool`) or in this one; what the workers share
   (the decoded photos) is built once before they start (`ready_worker_inputs`);
4. ``manifest.json`` is merged from the sidecars when the run ends, also after a failure
   (:func:`~synthssl.dataset.manifest.index_folder`).

So the parent only plans, hands shards out and merges: the writer never serialises a run, and
cluster array jobs may share one output directory. A failed write (full disk) is an
`OutputWriteError` naming the file and the cause, with its temporary file removed; a dead
worker is a `RenderWorkerError` naming the process and its shard, the finished shards kept.
Ctrl-C stops the workers, removes their temporary files, merges the manifest of the finished
shards and raises `~synthssl.render.interrupt.RenderInterrupted` naming ``--resume``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from synthssl.core.console import ProgressLine, is_tty
from synthssl.core.errors import OutputWriteError, write_failure
from synthssl.dataset.errors import ShardFormatError
from synthssl.dataset.layout import shard_relpaths
from synthssl.dataset.manifest import MANIFEST_NAME, index_folder

from . import gl_compat
from .asset_cache import open_asset_set
from .config import RenderConfig
from .identity import FolderClaim, release_folder
from .interrupt import InterruptOnce, RenderInterrupted, interrupted_message
from .photo_cache import open_photo_set
from .physics import physics_available, physics_notice
from .preflight import check_before_render
from .provenance import Provenance, provenance_of
from .resume import ShardPlan, prepare_folder, remove_stale_tmp, shards_to_render
from .run_summary import RunSummary
from .scene import drawn_assets
from .textures import PHOTO_SIDE_PER_TEXTURE
from .worker_pool import InProcessPool, RenderWorkerError, ShardFailed, WorkerPool

log = logging.getLogger("synthssl.render")


def render_dataset(
    cfg: RenderConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after_shards: int | None = None,
    deep: bool = False,
    in_process: bool | None = None,
) -> RunSummary:
    """Render this job's shards of ``cfg`` into ``cfg.out``; see the module docstring.

    ``progress``: a bar on a terminal, else one plain line per finished shard (scenes
    done, scenes/s, ETA). ``deep``: verify skipped shards fully on ``resume``.
    ``in_process``: render in this process (True) or in ``cfg.workers`` spawned workers
    (False); default: in this process when one worker or one shard is enough. The
    benchmark spawns even one worker, so that 1 and N workers pay the same start-up.

    ``stop_after_shards`` ends the run after writing that many shards (tests use it
    to simulate an interrupted run).

    Before the folder is touched, `~synthssl.render.preflight.check_before_render` checks what
    can fail cheaply (ConfigError, OutputWriteError). A run that fails, or is interrupted,
    before any shard is in the folder leaves it as it was found
    (`~synthssl.render.identity.release_folder`). Ctrl-C raises `RenderInterrupted` (a
    KeyboardInterrupt) once the workers are stopped and their temporary files removed.
    """
    if not cfg.out:
        raise ValueError("out: an output directory is required (out=DIR)")
    out = Path(cfg.out)
    with InterruptOnce() as interrupt:
        claim: FolderClaim | None = None
        try:
            check_before_render(cfg)
            provenance = provenance_of(cfg)
            interrupt.check()
            claim = prepare_folder(out, cfg, provenance)
            return _render_claimed(cfg, provenance, resume, progress, stop_after_shards, deep, in_process, interrupt)
        except KeyboardInterrupt:
            released = claim is None or release_folder(claim)
            message = interrupted_message(str(out), len(shard_relpaths(out)) if out.is_dir() else 0, released)
            raise RenderInterrupted(message) from None
        except BaseException:
            if claim is not None and release_folder(claim):
                log.debug("%s: no shard was written; identity.json and manifest.json removed", out)
            raise


def _render_claimed(
    cfg: RenderConfig,
    provenance: Provenance,
    resume: bool,
    progress: bool,
    stop_after_shards: int | None,
    deep: bool,
    in_process: bool | None,
    interrupt: InterruptOnce,
) -> RunSummary:
    """`render_dataset` once ``cfg.out`` is claimed: decide what to render, write it, merge the manifest."""
    out = Path(cfg.out)
    todo, found = shards_to_render(out, cfg, resume, deep)
    summary = RunSummary(out=str(out), shards_skipped=found.skipped, shards_rerendered=found.rerendered)
    if stop_after_shards is not None:
        todo = todo[:stop_after_shards]
    if cfg.physics.pybullet and not physics_available():
        physics_notice()
    start = time.perf_counter()
    overlaps: list[float] = []
    extra = {"seed": cfg.seed}
    if todo:
        if in_process is None:
            in_process = cfg.workers == 1 or len(todo) == 1
        ok = False
        try:
            _write_shards(cfg, provenance, todo, in_process, progress, summary, overlaps, interrupt)
            ok = True
        finally:
            if not ok:
                _merge_quietly(out, extra)  # the finished shards are listed even after a failure
    t = time.perf_counter()
    try:
        index_folder(out, extra)
    except OSError as exc:
        raise OutputWriteError(out / MANIFEST_NAME, write_failure(exc, out)) from None
    summary.stage_seconds["manifest"] = time.perf_counter() - t
    summary.seconds = time.perf_counter() - start
    summary.mean_overlap = float(np.mean(overlaps)) if overlaps else None
    return summary


def _write_shards(
    cfg: RenderConfig,
    provenance: Provenance,
    todo: list[ShardPlan],
    in_process: bool,
    progress: bool,
    summary: RunSummary,
    overlaps: list[float],
    interrupt: InterruptOnce,
) -> None:
    """Write ``todo``'s shards in this process or in spawned workers, counting each in ``summary``
    and its scenes' overlaps in ``overlaps``; raises the error of a failed shard or worker, and
    KeyboardInterrupt after each scene or shard once ``interrupt`` fired."""
    out = Path(cfg.out)
    scenes = sum(p.num_scenes for p in todo)
    gl_compat.use_backend(cfg.backend)  # probe once here; spawned workers inherit PYOPENGL_PLATFORM
    ready_worker_inputs(cfg)
    bar = tqdm(
        total=scenes, unit="scene", disable=not (progress and is_tty()), desc="render-scenes", dynamic_ncols=True
    )
    lines = ProgressLine(scenes, unit="scene") if progress and not is_tty() else None
    start = time.perf_counter()
    pool: InProcessPool | WorkerPool | None = None
    try:
        if in_process:

            def on_scene() -> None:
                bar.update(1)
                interrupt.check()

            pool = InProcessPool(cfg.to_dict(), provenance, on_scene=on_scene)
        else:
            pool = WorkerPool(min(cfg.workers, len(todo)), cfg.to_dict(), provenance)
        interrupt.check()
        for result in pool.run(todo):
            interrupt.check()
            summary.add_shard(result, time.perf_counter() - start)
            overlaps.extend(result.overlaps)
            if not in_process:
                bar.update(result.num_scenes)
            if lines is not None:
                log.info("%s", lines.line(summary.scenes_rendered, f"({result.relpath} written)"))
    except ShardFailed as failed:
        if isinstance(failed.cause, OSError):  # full disk, quota, I/O error: the temporary file is already removed
            raise OutputWriteError(out / failed.plan.relpath, write_failure(failed.cause, out)) from None
        raise failed.cause from None
    except RenderWorkerError as exc:
        raise RenderWorkerError(
            f"{exc}; {summary.shards_written + summary.shards_skipped} finished shards in {out} "
            f"are kept; run the same command with --resume to complete"
        ) from None
    finally:
        bar.close()
        if pool is not None:
            pool.close()
        if not in_process:
            remove_stale_tmp(out, quiet=True)  # a worker stopped in the middle of its file write


def ready_worker_inputs(cfg: RenderConfig) -> None:
    """Build, once per run and before the workers start, what each of them maps instead of making
    it: the photo set of ``appearance.photo_dir`` (`synthssl.render.photo_cache`), when photo
    textures are drawn, and the asset set (`synthssl.render.asset_cache`), when assets are. A
    worker's start-up then does not grow with the number of photos, nor its scenes with the
    number of assets it has not drawn yet."""
    a = cfg.appearance
    if a.texture_weights.get("photo", 0) > 0 and a.photo_dir is not None:
        open_photo_set(a.photo_dir, PHOTO_SIDE_PER_TEXTURE * a.texture_size)
    assets = drawn_assets(cfg)
    if assets:
        open_asset_set(tuple(e.path for e in assets), cfg.objects.max_faces)


def _merge_quietly(out: Path, extra: dict) -> None:
    """`index_folder` after a failed run; its own failure (the disk is still full) is left to the
    next run or ``render-scenes index`` (every finished shard has its sidecar)."""
    try:
        index_folder(out, extra)
    except (OSError, ShardFormatError) as exc:
        log.debug("manifest not merged after the failure: %s", exc)


__all__ = ["render_dataset", "ready_worker_inputs", "RunSummary"]
