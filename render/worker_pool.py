"""Shards written by spawned worker processes, and what to say when one dies.

`WorkerPool` starts ``workers`` processes with ``spawn`` (a fresh interpreter each: no GL state
is inherited). Each runs `serve_shards`: it sets its share of the CPUs as Mesa's rasterizer
threads (`rasterizer_threads_env`), builds one `~synthssl.render.shard_worker.ShardWorker` (its
own GL context) and writes the shards the parent sends over its pipe, one at a time, answering
each with a `ShardResult` or the exception the shard raised. A worker's state is that
function's `ShardWorker`; nothing is kept at module level.

Workers ignore SIGINT from their start (`start_ignoring_sigint`): on Ctrl-C the parent stops
them. The parent waits on the pipes and the processes' sentinels together, so a worker that dies
(the OOM killer, a signal, a crash in GL) is noticed at once and reported as
:class:`RenderWorkerError` naming the process, how it ended and the shard it was writing,
instead of a parent waiting forever. `InProcessPool` offers the same interface over one
`ShardWorker` in the calling process (one worker: no start-up cost).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator

from synthssl.core.console import setup_logging
from synthssl.core.exit_status import describe_exit

from .provenance import Provenance
from .resume import ShardPlan
from .shard_worker import ShardResult, ShardWorker

#: Seconds `WorkerPool.close` waits for idle workers to exit before it terminates them.
EXIT_WAIT_S = 10.0


class RenderWorkerError(RuntimeError):
    """A rendering worker process died (killed by the OOM killer, a signal, a crash in GL)."""


class ShardFailed(Exception):
    """A shard's work raised ``cause`` (re-raised by the caller, which knows the output folder)."""

    def __init__(self, plan: ShardPlan, cause: BaseException):
        super().__init__(plan, cause)
        self.plan, self.cause = plan, cause


def rasterizer_threads_env(workers: int) -> dict[str, str]:
    """``LP_NUM_THREADS`` for each of ``workers`` processes: Mesa's llvmpipe (the CPU GL driver)
    starts one rasterizer thread per CPU in every process, so N workers on N cores would run N x N
    threads; each gets its share of the CPUs instead. A share of one CPU is ``0``: llvmpipe then
    rasterizes in the worker's own thread, which costs less CPU per pass than handing every draw to
    a rasterizer thread and waiting for it. Empty when the user set it (or one worker)."""
    if workers <= 1 or "LP_NUM_THREADS" in os.environ:
        return {}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = cpus // workers
    return {"LP_NUM_THREADS": str(share if share > 1 else 0)}


def start_ignoring_sigint(process: mp.process.BaseProcess) -> None:
    """Start ``process`` with SIGINT ignored from its first instruction.

    Ctrl-C at a terminal signals the whole process group; a spawned worker still importing its
    modules would die of it with a KeyboardInterrupt traceback. An ignored disposition survives
    the exec of a spawned process (a handler does not), so SIGINT is ignored here while the
    process starts; it is also blocked meanwhile, so a Ctrl-C meant for this process stays
    pending and arrives once the previous handler is back. Outside the main thread: a plain start.
    """
    if threading.current_thread() is not threading.main_thread():
        process.start()
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _reply(conn: Connection, kind: str, value: Any) -> None:
    """Send (kind, value); an exception that cannot be pickled goes as a RuntimeError with its text."""
    try:
        conn.send((kind, value))
    except Exception:  # noqa: BLE001 - pickling an arbitrary exception can fail in many ways
        conn.send((kind, RuntimeError(f"{type(value).__name__}: {value}")))


def serve_shards(conn: Connection, cfg_dict: dict, provenance: Provenance, env: dict[str, str]) -> None:
    """A worker process's main function: write each `ShardPlan` received on ``conn`` until None
    (or the parent is gone), answering ("done", ShardResult) or ("error", exception)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the workers
    setup_logging("render-scenes")  # this process's warnings read like the parent's
    os.environ.update(env)  # before this process creates its GL context
    try:
        worker = ShardWorker(cfg_dict, provenance)
    except Exception as exc:  # noqa: BLE001 - the parent re-raises it for the shard it sent
        _reply(conn, "error", exc)
        return
    with worker:
        while True:
            try:
                plan = conn.recv()
            except EOFError:
                return
            if plan is None:
                return
            try:
                result = worker.write(plan)
            except Exception as exc:  # noqa: BLE001 - the parent re-raises it naming the shard
                _reply(conn, "error", exc)
            else:
                _reply(conn, "done", result)


@dataclass(eq=False)
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection
    plan: ShardPlan | None = None
    """the shard it is writing, None when idle."""


class WorkerPool:
    """``workers`` spawned processes writing the shards of one render (see the module docstring)."""

    def __init__(self, workers: int, cfg_dict: dict, provenance: Provenance):
        ctx = mp.get_context("spawn")
        env = rasterizer_threads_env(workers)
        self._workers: list[_Worker] = []
        try:
            for _ in range(workers):
                parent_end, child_end = ctx.Pipe()
                process = ctx.Process(target=serve_shards, args=(child_end, cfg_dict, provenance, env), daemon=True)
                start_ignoring_sigint(process)
                child_end.close()
                self._workers.append(_Worker(process, parent_end))
        except BaseException:
            self.close()
            raise

    def _died(self, w: _Worker) -> RenderWorkerError:
        w.process.join(timeout=2.0)  # reaped: its exit code says how it ended
        return RenderWorkerError(
            f"worker process {w.process.pid} ({describe_exit(w.process.exitcode)}) died while "
            f"{w.plan.describe()} was being rendered"
        )

    def run(self, plans: list[ShardPlan]) -> Iterator[ShardResult]:
        """Write ``plans``' shards, yielding each result as it finishes (any order). Raises
        RenderWorkerError when a worker dies, ShardFailed when a shard's work raised."""
        todo = iter(plans)

        def hand_out(w: _Worker) -> None:
            w.plan = next(todo, None)
            if w.plan is not None:
                w.conn.send(w.plan)

        for w in self._workers:
            hand_out(w)
        while busy := [w for w in self._workers if w.plan is not None]:
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for w in sorted(busy, key=lambda w: w.plan.index):
                if w.conn in ready:
                    try:
                        kind, value = w.conn.recv()
                    except (EOFError, OSError):
                        raise self._died(w) from None
                    plan = w.plan
                    if kind == "error":
                        raise ShardFailed(plan, value)
                    hand_out(w)
                    yield value
                elif w.process.sentinel in ready:
                    raise self._died(w)

    def close(self) -> None:
        """Stop the workers: idle ones exit (closing their GL context), busy ones are terminated
        (their shards are dropped); waits for all of them."""
        for w in self._workers:
            if w.plan is None and w.process.is_alive():
                try:
                    w.conn.send(None)
                except OSError:
                    pass
            elif w.process.is_alive():
                w.process.terminate()
        for w in self._workers:
            w.process.join(timeout=EXIT_WAIT_S)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join()
            w.conn.close()


class InProcessPool:
    """The `WorkerPool` interface over one `ShardWorker` in this process; ``on_scene()`` is called
    after every scene (a per-scene progress bar)."""

    def __init__(self, cfg_dict: dict, provenance: Provenance, on_scene: Callable[[], None] | None = None):
        self._worker = ShardWorker(cfg_dict, provenance)
        self._on_scene = on_scene

    def run(self, plans: list[ShardPlan]) -> Iterator[ShardResult]:
        """Write ``plans``' shards one after the other; raises ShardFailed when a shard's work raised."""
        for plan in plans:
            try:
                result = self._worker.write(plan, self._on_scene)
            except Exception as exc:  # noqa: BLE001 - re-raised by the caller with the shard named
                raise ShardFailed(plan, exc) from None
            yield result

    def close(self) -> None:
        self._worker.close()


__all__ = [
    "WorkerPool",
    "InProcessPool",
    "RenderWorkerError",
    "ShardFailed",
    "serve_shards",
    "start_ignoring_sigint",
    "rasterizer_threads_env",
]
