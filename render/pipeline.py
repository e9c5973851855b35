"""Render a dataset: plan shards, render and write each shard in a worker process.

Shard k holds scenes [k*shard_size, min((k+1)*shard_size, scenes)) and sits at
`~synthssl.dataset.layout.shard_relpath` (``shard-{k:05d}.h5``; from shard 1000 on in
subfolders of 1000). A job renders the shards with ``k % num_shards == shard_index``.

The unit of work is a shard: a worker renders its scenes, compresses and writes them
(:class:`~synthssl.dataset.writer.ShardWriter`: temporary file, then rename), then writes the
shard's sidecar; the parent only plans, hands shards out and merges ``manifest.json`` from
the sidecars when the run ends (:func:`~synthssl.dataset.manifest.index_folder`), also after a
failure. So the writer never serialises a run, and cluster array jobs may share one output
directory. Each shard carries the render's provenance (`synthssl.render.provenance`).

Existing shards: a shard file whose header matches the plan (first scene, scene
count, seed and every content-defining config value) is *finished*; ``resume=True``
skips it after verifying it (structure and its first and last scenes; every scene
and the manifest checksum with ``deep=True``) and renders it again when that fails,
saying so; without ``resume`` it is rendered again (to identical arrays). A shard
rendered with a different content config is an error naming the file and the
differing key, and so is a folder claimed by another render (`synthssl.render.identity`)
or a plan with fewer scenes than the folder holds. Temporary files left by dead
writers are removed first. A failed write (full disk) is an `OutputWriteError` naming
the file and the cause, with its temporary file removed.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from synthssl.core.console import ProgressLine, is_tty, setup_logging
from synthssl.core.errors import OutputWriteError, write_failure
from synthssl.dataset.errors import ShardFormatError
from synthssl.dataset.layout import relpath, shard_relpath, shard_relpaths, sidecar_path
from synthssl.dataset.manifest import (
    MANIFEST_NAME,
    index_folder,
    read_manifest,
    read_sidecar,
    record_finished,
    sha256_file,
    stale_tmp_files,
)
from synthssl.dataset.reader import Shard
from synthssl.dataset.validate import validate_shard
from synthssl.dataset.writer import ShardWriter

from . import gl_compat
from .config import RenderConfig, config_from_dict
from .identity import (
    NON_CONTENT_KEYS,
    check_scene_count,
    claim_folder,
    content_config,
    identity_of,
    legacy_config_hashes,
)
from .physics import PhysicsWorld, physics_available, physics_notice
from .provenance import render_provenance
from .renderer import SceneRenderer
from .scene import SceneSampler
from .scene_maps import render_scene

log = logging.getLogger("synthssl.render")


def shard_name(k: int) -> str:
    """Shard k's path relative to the output folder (`shard_relpath`)."""
    return shard_relpath(k)


@dataclass
class ShardPlan:
    index: int
    first_scene: int
    num_scenes: int

    @property
    def scenes(self) -> range:
        return range(self.first_scene, self.first_scene + self.num_scenes)


def plan_shards(cfg: RenderConfig) -> list[ShardPlan]:
    """The shards this job (shard_index of num_shards) is responsible for."""
    n, s = cfg.scenes, cfg.shard_size
    return [
        ShardPlan(k, k * s, min(s, n - k * s)) for k in range((n + s - 1) // s) if k % cfg.num_shards == cfg.shard_index
    ]


def existing_shard_status(path: Path, plan: ShardPlan, cfg: RenderConfig) -> bool:
    """True if ``path`` is a finished shard of this plan; False if absent/unreadable; error if it conflicts."""
    if not path.exists():
        return False
    try:
        shard = Shard(path)
    except ShardFormatError as exc:
        log.warning("%s; rendering it again", exc)
        return False
    check_same_content(shard, cfg)
    a = shard.attrs
    return int(a.get("first_scene", -1)) == plan.first_scene and int(a.get("num_scenes", -1)) == plan.num_scenes


def check_same_content(shard: Shard, cfg: RenderConfig) -> None:
    """ShardFormatError naming the first differing key when ``shard`` was rendered with another content config."""
    theirs = shard.attrs.get("render_config")
    theirs = json.loads(theirs) if isinstance(theirs, str) else (theirs or {})
    mine, theirs = content_config(cfg.to_dict()), content_config(theirs)
    diff = sorted(
        k
        for k in set(mine) | set(theirs)
        if json.dumps(mine.get(k), sort_keys=True) != json.dumps(theirs.get(k), sort_keys=True)
    )
    if diff:
        raise ShardFormatError(
            shard.path,
            "render_config",
            f"rendered with a different '{diff[0]}' than this run; "
            "use another --out directory (or delete the old shards)",
        )


def folder_shards(out: Path, cfg: RenderConfig) -> dict[str, tuple[int, int]]:
    """{file: (first scene, scenes)} of the readable shards in ``out``, each checked against ``cfg``'s content."""
    found = {}
    for path in (out / rel for rel in shard_relpaths(out)):
        try:
            shard = Shard(path)
        except ShardFormatError:
            continue  # unreadable: rendered again when planned
        check_same_content(shard, cfg)
        found[relpath(out, path)] = (int(shard.attrs["first_scene"]), int(shard.attrs["num_scenes"]))
        shard.close()
    return found


def verify_finished(path: Path, entry: dict | None, deep: bool) -> str | None:
    """Why the finished shard ``path`` cannot be kept, or None: its structure and first and last scenes
    (every scene, and the checksum ``entry`` of the manifest recorded, with ``deep``)."""
    try:
        summary = validate_shard(path, deep=deep)
        if not deep and summary["num_scenes"]:
            shard = Shard(path)
            shard.read_scene(0)
            shard.read_scene(summary["num_scenes"] - 1)
            shard.close()
    except ShardFormatError as exc:
        return str(exc)
    if deep and entry is not None and entry.get("sha256") != sha256_file(path):
        return f"{path}: sha256: checksum differs from the manifest (file changed or corrupt)"
    return None


def remove_stale_tmp(out: Path, quiet: bool = False) -> None:
    """Remove the temporary files of writers that died in ``out`` (a full disk stays full otherwise).
    ``quiet``: no warning (after this run's own workers were stopped)."""
    stale = stale_tmp_files(out)
    for p in stale:
        p.unlink(missing_ok=True)
    if stale and not quiet:
        log.warning(
            "removed %d temporary file(s) left by dead processes: %s",
            len(stale),
            ", ".join(relpath(out, p) for p in stale),
        )


def set_aside_broken_manifest(out: Path) -> None:
    """Rename an unreadable manifest.json to ``manifest.json.broken-<time>``: it is rebuilt from the shards."""
    try:
        read_manifest(out)
    except ShardFormatError as exc:
        aside = out / f"{MANIFEST_NAME}.broken-{time.strftime('%Y%m%d-%H%M%S')}"
        (out / MANIFEST_NAME).rename(aside)
        log.warning("%s; kept as %s and rebuilt from the shards", exc.problem.split(";")[0], aside.name)


def prepare_folder(out: Path, cfg: RenderConfig) -> None:
    """Create ``out``, clean dead writers' leftovers and claim it for this render (see the module docstring)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(out)
        set_aside_broken_manifest(out)
        existing = folder_shards(out, cfg)  # an older folder without identity.json is checked shard by shard
        check_scene_count(out, cfg, existing)
        claim_folder(out, identity_of(cfg), legacy_config_hashes(cfg))
    except OSError as exc:
        raise OutputWriteError(
            out, write_failure(exc, out.parent if not out.exists() else out), "write into the output folder"
        ) from None


# -- worker processes ------------------------------------------------------
_worker: dict = {}


def rasterizer_threads_env(workers: int) -> dict[str, str]:
    """``LP_NUM_THREADS`` for each of ``workers`` processes: Mesa's llvmpipe (the CPU GL driver)
    starts one rasterizer thread per CPU in every process, so N workers on N cores would run N x N
    threads; each gets its share of the CPUs instead. Empty when the user set it (or one worker)."""
    if workers <= 1 or "LP_NUM_THREADS" in os.environ:
        return {}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"LP_NUM_THREADS": str(max(1, cpus // workers))}


def _init_worker(cfg_dict: dict, provenance: dict, env: dict | None = None) -> None:
    if mp.parent_process() is not None:  # a spawned worker: its warnings read like the parent's
        setup_logging("render-scenes")
    os.environ.update(env or {})  # before this process creates its GL context
    cfg = config_from_dict(cfg_dict)
    physics = None
    if cfg.physics.enabled:
        if physics_available():
            physics = PhysicsWorld()
        else:
            physics_notice()
    _worker["cfg"], _worker["cfg_dict"], _worker["provenance"] = cfg, cfg_dict, provenance
    old = _worker.get("physics")
    if old is not None:
        old.close()
    _worker["physics"] = physics
    _worker["sampler"] = SceneSampler(cfg, physics)
    key = (cfg.size, cfg.backend, cfg.appearance.antialias)
    if _worker.get("renderer_key") != key:  # one GL context per process, reused across runs
        if _worker.get("renderer") is not None:
            _worker["renderer"].close()
        _worker["renderer"] = SceneRenderer(cfg.size, cfg.size, cfg.backend, cfg.appearance.antialias)
        _worker["renderer_key"] = key


@dataclass
class ShardResult:
    """What a worker reports for one finished shard (the scenes themselves stay in the file)."""

    index: int
    file: str
    """path relative to the output folder."""
    num_scenes: int
    stage_seconds: dict
    """summed over the shard's scenes; ``write`` = append (compression) + file write + sidecar."""
    overlaps: list


def _write_shard(plan: ShardPlan, on_scene=None) -> ShardResult:
    """Render ``plan``'s scenes and write them as one shard plus its sidecar (in this process).
    ``on_scene()`` is called after each scene. An OSError (full disk) leaves no temporary file."""
    cfg, provenance = _worker["cfg"], _worker["provenance"]
    sampler, renderer = _worker["sampler"], _worker["renderer"]
    out = Path(cfg.out)
    rel = shard_relpath(plan.index)
    sidecar_path(out / rel).unlink(missing_ok=True)  # a re-rendered shard: no stale entry survives a kill
    attrs = {
        "seed": cfg.seed,
        "render_config": _worker["cfg_dict"],
        "category_names": sampler.category_names,
        "first_scene": plan.first_scene,
        **provenance,
    }
    stages: dict[str, float] = {}
    overlaps: list[float] = []
    writer = ShardWriter(
        out / rel,
        height=cfg.size,
        width=cfg.size,
        views=cfg.views,
        max_objects=cfg.objects.max_objects,
        attrs=attrs,
        compression=cfg.compression,
        expected_scenes=plan.num_scenes,
    )
    with writer:
        for index in plan.scenes:
            scene, stats = render_scene(cfg, sampler, renderer, index)
            t = time.perf_counter()
            writer.append(scene)
            stats["write"] = time.perf_counter() - t
            for k, v in stats.items():
                stages[k] = stages.get(k, 0.0) + float(v)
            overlaps.extend(np.asarray(scene["overlap"]).tolist())
            if on_scene is not None:
                on_scene()
        t = time.perf_counter()
    record_finished(out, writer.path, writer.root_attrs, writer.sha256)  # closed and renamed by the with block
    stages["write"] = stages.get("write", 0.0) + time.perf_counter() - t
    return ShardResult(plan.index, rel, writer.count, stages, overlaps)


class RenderWorkerError(RuntimeError):
    """A rendering worker process died (killed by the OOM killer, a signal, a crash in GL)."""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _scene_range(plan: ShardPlan) -> str:
    return f"{shard_relpath(plan.index)} (scenes {plan.first_scene}-{plan.first_scene + plan.num_scenes - 1})"


class ShardFailed(Exception):
    """A shard's work raised ``cause`` (re-raised by the caller, which knows the plan)."""

    def __init__(self, plan: ShardPlan, cause: BaseException):
        super().__init__(plan, cause)
        self.plan, self.cause = plan, cause


class WorkerPool:
    """Shards rendered and written by spawned worker processes, yielded as they finish.

    Built on :class:`ProcessPoolExecutor`, which notices a worker that dies (its
    sentinel fires) and fails every pending future with ``BrokenProcessPool``: a dead
    worker surfaces within moments as :class:`RenderWorkerError` naming the process and
    the shards in flight, instead of a parent waiting forever. At most ``window`` shards
    are handed out at once.
    """

    def __init__(self, workers: int, cfg_dict: dict, provenance: dict, window: int | None = None):
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(cfg_dict, provenance, rasterizer_threads_env(workers)),
        )
        self._workers = workers
        self._window = window or 2 * workers
        self._procs: dict[int, mp.process.BaseProcess] = {}

    def _track(self) -> None:
        self._procs.update(getattr(self._executor, "_processes", None) or {})

    def dead_workers(self, wait_s: float = 2.0) -> str:
        """'process 123 (killed by signal 9 (SIGKILL))' for the worker(s) that died, or 'a worker process'.

        The executor terminates the surviving workers itself (SIGTERM) once one died, and
        its thread may reap a process before this one looks: poll for up to ``wait_s``.
        """
        self._track()
        deadline = time.monotonic() + wait_s
        while True:
            codes = {pid: p.exitcode for pid, p in sorted(self._procs.items()) if p.exitcode is not None}
            first = {pid: c for pid, c in codes.items() if c != -signal.SIGTERM} or codes
            if first or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return ", ".join(f"process {pid} ({_describe_exit(c)})" for pid, c in first.items()) or "a worker process"

    def run(self, plans: list[ShardPlan]) -> Iterator[ShardResult]:
        """Write ``plans``' shards, yielding each as it finishes (any order). Raises RenderWorkerError
        when a worker dies, ShardFailed when a shard's work raised."""
        pending: dict[Future, ShardPlan] = {}
        todo = iter(plans)

        def refill() -> None:
            for plan in todo:
                pending[self._executor.submit(_write_shard, plan)] = plan
                self._track()
                if len(pending) >= self._window:
                    break

        refill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f].index):
                plan = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    flight = sorted([plan, *pending.values()], key=lambda p: p.index)[: self._workers]
                    raise RenderWorkerError(
                        f"worker {self.dead_workers()} died while "
                        f"{', '.join(_scene_range(p) for p in flight)} "
                        f"{'was' if len(flight) == 1 else 'were'} being rendered"
                    ) from None
                except Exception as exc:  # noqa: BLE001 - re-raised by the caller with the shard named
                    raise ShardFailed(plan, exc) from None
                yield result
            refill()

    def close(self) -> None:
        """Stop the workers now (pending shards are dropped) and wait for them to exit."""
        self._track()
        for p in self._procs.values():
            if p.exitcode is None:
                p.terminate()
        self._executor.shutdown(wait=True, cancel_futures=True)


def _write_in_this_process(plans: list[ShardPlan], on_scene) -> Iterator[ShardResult]:
    """Write ``plans``' shards one after the other in this process (one worker)."""
    for plan in plans:
        try:
            yield _write_shard(plan, on_scene)
        except Exception as exc:  # noqa: BLE001 - re-raised by the caller with the shard named
            raise ShardFailed(plan, exc) from None


@dataclass
class RunSummary:
    out: str
    scenes_rendered: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    shards_rerendered: int = 0
    """finished shards that failed verification on --resume and were rendered again."""
    seconds: float = 0.0
    stage_seconds: dict = field(default_factory=dict)
    mean_overlap: float | None = None
    """mean overlap of the scenes rendered in this run; None when none were rendered."""
    shards_done: list = field(default_factory=list)
    """(seconds since the rendering started, scenes) of each shard written, in finishing order
    (the benchmark's steady-state rate; not part of `to_dict`)."""

    @property
    def scenes_per_second(self) -> float:
        return self.scenes_rendered / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "out": self.out,
            "scenes_rendered": self.scenes_rendered,
            "shards_written": self.shards_written,
            "shards_skipped": self.shards_skipped,
            "shards_rerendered": self.shards_rerendered,
            "seconds": round(self.seconds, 3),
            "scenes_per_second": round(self.scenes_per_second, 3),
            "mean_overlap": None if self.mean_overlap is None else round(self.mean_overlap, 4),
            "stage_seconds_per_scene": {
                k: round(v / max(self.scenes_rendered, 1), 5) for k, v in self.stage_seconds.items()
            },
        }


def _shard_plans_to_do(
    out: Path, cfg: RenderConfig, resume: bool, deep: bool, summary: "RunSummary"
) -> list[ShardPlan]:
    """This job's shards that are not finished (or fail verification on ``resume``)."""
    todo = []
    listed: dict[str, dict] | None = None  # the manifest's entries, read once if a shard lacks its sidecar
    for plan in plan_shards(cfg):
        path = out / shard_relpath(plan.index)
        finished = existing_shard_status(path, plan, cfg)
        entry = read_sidecar(path) if finished and resume else None
        if finished and resume and entry is None:
            listed = _manifest_entries(out) if listed is None else listed
            entry = listed.get(relpath(out, path))
        problem = verify_finished(path, entry, deep) if finished and resume else None
        if problem:
            log.warning("%s; rendering %s again", problem, relpath(out, path))
            summary.shards_rerendered += 1
        if finished and resume and not problem:
            summary.shards_skipped += 1
        else:
            todo.append(plan)
    return todo


def _manifest_entries(out: Path) -> dict[str, dict]:
    """{file: entry} of ``out``'s manifest (for shards written before sidecars existed); {} if none."""
    try:
        manifest = read_manifest(out) or {}
    except ShardFormatError:
        return {}
    return {e.get("file"): e for e in manifest.get("shards", [])}


def render_dataset(
    cfg: RenderConfig,
    resume: bool = False,
    progress: bool = True,
    stop_after_shards: int | None = None,
    deep: bool = False,
    in_process: bool | None = None,
) -> RunSummary:
    """Render this job's shards of ``cfg`` into ``cfg.out``; see module docstring.

    ``progress``: a bar on a terminal, else one plain line per finished shard (scenes
    done, scenes/s, ETA). ``deep``: verify skipped shards fully on ``resume``.
    ``in_process``: render in this process (True) or in ``cfg.workers`` spawned workers
    (False); default: in this process when one worker or one shard is enough. The
    benchmark spawns even one worker, so that 1 and N workers pay the same start-up.

    ``stop_after_shards`` ends the run after writing that many shards (tests use it
    to simulate an interrupted run).
    """
    if not cfg.out:
        raise ValueError("out: an output directory is required (--out DIR)")
    out = Path(cfg.out)
    prepare_folder(out, cfg)
    provenance = render_provenance(cfg)
    cfg_dict = cfg.to_dict()
    summary = RunSummary(out=str(out))
    todo = _shard_plans_to_do(out, cfg, resume, deep, summary)
    if stop_after_shards is not None:
        todo = todo[:stop_after_shards]
    scenes = sum(p.num_scenes for p in todo)
    if cfg.physics.enabled and not physics_available():
        physics_notice()
    start = time.perf_counter()
    stages: dict[str, float] = {}
    overlaps: list[float] = []
    extra = {"seed": cfg.seed}
    if todo:
        gl_compat.use_backend(cfg.backend)  # probe once here; spawned workers inherit PYOPENGL_PLATFORM
        bar = tqdm(
            total=scenes, unit="scene", disable=not (progress and is_tty()), desc="render-scenes", dynamic_ncols=True
        )
        lines = ProgressLine(scenes, unit="scene") if progress and not is_tty() else None
        if in_process is None:
            in_process = cfg.workers == 1 or len(todo) == 1
        pool = None if in_process else WorkerPool(min(cfg.workers, len(todo)), cfg_dict, provenance)
        if pool is None:
            _init_worker(cfg_dict, provenance)
        results = pool.run(todo) if pool is not None else _write_in_this_process(todo, lambda: bar.update(1))
        ok = False
        try:
            for result in results:
                for k, v in result.stage_seconds.items():
                    stages[k] = stages.get(k, 0.0) + v
                overlaps.extend(result.overlaps)
                summary.scenes_rendered += result.num_scenes
                summary.shards_written += 1
                summary.shards_done.append((time.perf_counter() - start, result.num_scenes))
                if pool is not None:
                    bar.update(result.num_scenes)
                if lines is not None:
                    log.info("%s", lines.line(summary.scenes_rendered, f"({result.file} written)"))
            ok = True
        except ShardFailed as failed:
            exc = failed.cause
            if isinstance(exc, OSError):  # full disk, quota, I/O error: the temporary file is already removed
                raise OutputWriteError(out / shard_relpath(failed.plan.index), write_failure(exc, out)) from None
            raise exc from None
        except RenderWorkerError as exc:
            raise RenderWorkerError(
                f"{exc}; {summary.shards_written + summary.shards_skipped} finished shards in {out} "
                f"are kept; run the same command with --resume to complete"
            ) from None
        finally:
            bar.close()
            if pool is not None:
                pool.close()
                remove_stale_tmp(out, quiet=True)  # a worker stopped in the middle of its file write
            if not ok:
                _merge_quietly(out, extra)  # the finished shards are listed even after a failure
    t = time.perf_counter()
    try:
        index_folder(out, extra)
    except OSError as exc:
        raise OutputWriteError(out / MANIFEST_NAME, write_failure(exc, out)) from None
    stages["manifest"] = time.perf_counter() - t
    summary.seconds = time.perf_counter() - start
    summary.stage_seconds = stages
    summary.mean_overlap = float(np.mean(overlaps)) if overlaps else None
    return summary


def _merge_quietly(out: Path, extra: dict) -> None:
    """`index_folder` after a failed run; its own failure (the disk is still full) is left to the
    next run or ``render-scenes index`` (every finished shard has its sidecar)."""
    try:
        index_folder(out, extra)
    except (OSError, ShardFormatError) as exc:
        log.debug("manifest not merged after the failure: %s", exc)


__all__ = [
    "render_dataset",
    "RenderWorkerError",
    "WorkerPool",
    "plan_shards",
    "ShardPlan",
    "ShardResult",
    "RunSummary",
    "shard_name",
    "existing_shard_status",
    "verify_finished",
    "prepare_folder",
    "NON_CONTENT_KEYS",
    "content_config",
]
