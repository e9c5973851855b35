"""Training scenes rendered on the fly: `SceneStream`, the trainer's side of ``data.stream``.

A `SceneStream` starts ``workers`` render worker processes (``python -m synthssl.render.stream``:
the renderer is a separate program to the trainer, which never imports it) and talks to them
in lines of text over their stdin and stdout (the protocol is in that module's docstring).
Scenes cross the process boundary through one shared-memory ring of slots
(`synthssl.dataset.stream_slots.SlotRing`, created and unlinked here): a worker renders scene
``i`` into a slot, says ``ready``, and the trainer copies the slot out once into the batch and
frees it. No array is ever pickled.

Which scene comes when is a pure function of the render config and the position, whatever the
number of workers or how fast each is: the scene at ``position`` p of rank r of ``world`` ranks
is scene ``p * world + r`` of the render config (its ``seed`` decides the scenes), so no scene
repeats, ranks never share one, and a run resumed at position p (`start`) trains on exactly the
scenes an uninterrupted run would. ``position`` counts the scenes this rank has consumed. Scenes
with more than two views give the pair that `synthssl.train.data.scenes.view_pair` draws from
``(pair_seed, position)``, as `SceneDataset` does.

The ring holds ``batch + 2 x workers`` slots, and every free slot is handed to a worker at once
(to the one with the fewest requests queued), so the next batch renders while the trainer trains
on this one. Batches come in position order as the
dict of CPU tensors a `SceneDataset` batch is (`next_batch`).

A worker that dies, or whose render raises, fails the run with `RenderStreamError`, one line
naming the process, how it ended and the scene; a bad render config is a `ConfigError` naming
``data.stream``. `close` (also run at interpreter exit) stops the workers and unlinks the ring,
so nothing is left in ``/dev/shm`` or the process table.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from synthssl.core.config import ConfigError
from synthssl.core.exit_status import describe_exit
from synthssl.dataset.stream_slots import SHM_DIR, SlotLayout, SlotRing
from synthssl.train.data.scenes import view_pair

__all__ = ["RenderStreamError", "StreamInfo", "SceneStream", "WORKER_MODULE", "ring_slots"]

#: The module each render worker runs (``python -m``).
WORKER_MODULE = "synthssl.render.stream"
#: Signals the workers are started with ignored (the trainer stops them itself; see that module).
IGNORED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
#: Seconds `SceneStream.close` waits for the workers to exit before it kills them.
EXIT_WAIT_S = 2.0
#: Slots of the ring per worker beyond one batch, so that every worker has work queued while the
#: trainer copies a batch out.
IN_FLIGHT = 2

_INT16_FIELDS = ("instance", "category")  # uint16 ids < 32768, read as int16 as `SceneDataset` does
_TORCH_DTYPES = {
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.uint16): torch.int16,
    np.dtype(np.float16): torch.float16,
    np.dtype(np.float32): torch.float32,
    np.dtype(np.int64): torch.int64,
}


class RenderStreamError(RuntimeError):
    """A render worker of the stream died or failed (one line: the process, how, which scene)."""


@dataclass(frozen=True)
class StreamInfo:
    """What the workers render: image ``size`` (square, px), ``views`` per scene, the render ``seed``,
    the ``category_names`` table, ``config_hash`` (sha256 of the content config, as ``render-scenes``
    records it) and its ``render_id``, and whether ``physics`` places the objects."""

    size: int
    views: int
    seed: int
    category_names: list[str]
    config_hash: str
    render_id: str
    physics: bool


def ring_slots(batch: int, workers: int) -> int:
    """Slots of the ring: one batch, plus `IN_FLIGHT` per worker."""
    return int(batch) + IN_FLIGHT * int(workers)


@dataclass(eq=False)
class _Worker:
    number: int
    process: subprocess.Popen
    buffer: bytes = b""
    inflight: deque = field(default_factory=deque)  # (position, slot) in request order
    hello: Optional[dict] = None
    attached: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid


def _spawn(command: list[str]) -> subprocess.Popen:
    """Start ``command`` with `IGNORED_SIGNALS` ignored from its first instruction (an ignored
    disposition survives exec); they are blocked meanwhile here, so one that arrives stays pending
    and reaches this process's own handler once it is back. Outside the main thread: a plain start."""
    kwargs: dict[str, Any] = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, bufsize=0)
    if threading.current_thread() is not threading.main_thread():
        return subprocess.Popen(command, **kwargs)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(IGNORED_SIGNALS))
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in IGNORED_SIGNALS}
    try:
        return subprocess.Popen(command, **kwargs)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _shutdown(workers: list[_Worker], rings: list[SlotRing], owner: int) -> None:
    """Stop the workers (``quit``; killed after `EXIT_WAIT_S`) and unlink the ring (idempotent; only in
    the process that started them, never in a forked child)."""
    if os.getpid() != owner:
        return
    for w in workers:
        if w.process.poll() is None:
            try:
                w.process.stdin.write(b"quit\n")
            except (BrokenPipeError, OSError, ValueError):
                pass
        try:
            w.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
    deadline = time.monotonic() + EXIT_WAIT_S
    for w in workers:
        try:
            w.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.process.kill()  # a worker still starting or rendering: its work is disposable
            w.process.wait()
        w.process.stdout.close()
    while rings:
        rings.pop().close()


class SceneStream:
    """Scenes of a render config rendered by worker processes into shared memory (module docstring).

    render: a shipped render config name or a YAML file (None: the render defaults); overrides:
    its ``key=value`` overrides; workers: render processes; fields: the scene fields the batches
    hold besides ``rgb`` and ``scene_id`` (`SceneDataset` names); batch: scenes per `next_batch`;
    rank / world: this rank's share of the scene indices; pair_seed: draws a pair of views per
    scene when the scenes have more than two (None keeps all views); pin: batches in pinned memory
    (for a CUDA device); prog: the prefix of the workers' log lines.

    Starts the workers and waits for each to report (`info`); raises ConfigError for a render
    config they refuse and RenderStreamError when one cannot start. Call `start` before the first
    `next_batch`, and `close` at the end.
    """

    def __init__(
        self,
        render: Optional[str],
        overrides: Sequence[str] = (),
        *,
        workers: int,
        fields: Sequence[str],
        batch: int,
        rank: int = 0,
        world: int = 1,
        pair_seed: Optional[int] = None,
        pin: bool = False,
        prog: str = "train-ssl render worker",
        verbosity: int = -1,
    ):
        if workers < 1 or batch < 1:
            raise ValueError(f"SceneStream: workers and batch must be >= 1, got {workers} and {batch}")
        self.render, self.overrides = render, list(overrides)
        self.rank, self.world, self.batch = int(rank), int(world), int(batch)
        self.pair_seed, self.pin = pair_seed, bool(pin)
        self.fields = tuple(fields)
        self.position: Optional[int] = None
        """scenes this rank has consumed (None before `start`)."""
        self._workers: list[_Worker] = []
        self._rings: list[SlotRing] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._rings, os.getpid())
        self._selector = selectors.DefaultSelector()
        self._ready: set[int] = set()
        self._slot_of: dict[int, int] = {}
        self._next = 0
        try:
            self._start_workers(workers, prog, verbosity)
            self.info = self._info()
            self.layout = SlotLayout.build(self.info.views, self.info.size, self.info.size, self.fields)
            self.slots = ring_slots(self.batch, workers)
            self._check_shared_memory()
            self.ring = SlotRing.create(self.layout, self.slots)
            self._rings.append(self.ring)
            self._free: deque[int] = deque(range(self.slots))
            for w in self._workers:
                self._send(w, f"attach {self.ring.name} {self.slots}")
            self._wait(lambda: all(w.attached for w in self._workers))
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ start-up
    def _start_workers(self, workers: int, prog: str, verbosity: int) -> None:
        for k in range(workers):
            w = _Worker(k, _spawn([sys.executable, "-m", WORKER_MODULE]))
            self._workers.append(w)
            self._selector.register(w.process.stdout.fileno(), selectors.EVENT_READ, w)
            job = {
                "config": self.render,
                "overrides": self.overrides,
                "worker": k,
                "workers": workers,
                "parent": os.getpid(),
                "fields": list(self.fields),
                "prog": f"{prog} {k}",
                "verbosity": verbosity,
            }
            self._send(w, json.dumps(job))
        self._wait(lambda: all(w.hello is not None for w in self._workers))

    def _info(self) -> StreamInfo:
        hellos = [w.hello for w in self._workers]
        if any(h["config_hash"] != hellos[0]["config_hash"] for h in hellos):
            raise ConfigError(f"data.stream: the render config {self.render} changed while its workers started")
        h = hellos[0]
        return StreamInfo(
            int(h["size"]),
            int(h["views"]),
            int(h["seed"]),
            list(h["category_names"]),
            str(h["config_hash"]),
            str(h["render_id"]),
            bool(h["physics"]),
        )

    def _check_shared_memory(self) -> None:
        need = SlotRing.nbytes(self.layout, self.slots)
        if not os.path.isdir(SHM_DIR):
            return
        free = shutil.disk_usage(SHM_DIR).free
        if free < need:
            raise ConfigError(
                f"data.batch_size: the scene stream's {self.slots} slots ({self.batch} scenes per batch and "
                f"{IN_FLIGHT} per render worker) need {need / 2**20:.0f} MiB of shared memory, and {SHM_DIR} has "
                f"{free / 2**20:.0f} MiB free; lower data.batch_size or data.stream_workers, or give the machine "
                f"more shared memory (a container: docker run --shm-size=...)"
            )

    # ------------------------------------------------------------------ protocol
    def _send(self, w: _Worker, line: str) -> None:
        try:
            w.process.stdin.write(line.encode() + b"\n")
        except (BrokenPipeError, OSError):
            raise self._died(w) from None

    def _what(self, w: _Worker) -> str:
        if w.hello is None:
            return "while starting"
        if w.inflight:
            return f"while rendering scene {self._index(w.inflight[0][0])}"
        return "between scenes"

    def _died(self, w: _Worker) -> RenderStreamError:
        try:
            code = w.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            code = None
        how = describe_exit(code) if code is not None else "closed its pipe"
        return RenderStreamError(
            f"render worker process {w.pid} ({how}) died {self._what(w)} for data.stream={self.render}"
            + ("; the run stops (continue from its last checkpoint with --resume)" if self.position is not None else "")
        )

    def _index(self, position: int) -> int:
        return position * self.world + self.rank

    def _handle(self, w: _Worker, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "ready":
            position, slot = w.inflight.popleft()
            if int(rest) != slot:
                raise RenderStreamError(f"render worker process {w.pid} answered slot {rest}, expected {slot}")
            self._ready.add(position)
        elif word == "hello":
            w.hello = json.loads(rest)
        elif word == "attached":
            w.attached = True
        elif word == "failed":
            kind, _, message = rest.partition(" ")
            if kind == "config":
                raise ConfigError(f"data.stream{' / data.stream_set' if self.overrides else ''}: {message}")
            if kind == "render":
                index, _, message = message.partition(" ")
                raise RenderStreamError(
                    f"render worker process {w.pid} failed on scene {index} of data.stream={self.render}: {message}"
                )
            raise RenderStreamError(f"render worker process {w.pid} could not start: {message}")
        else:
            raise RenderStreamError(f"render worker process {w.pid} said {line[:200]!r}, not a stream reply")

    def _wait(self, done: Callable[[], bool]) -> None:
        """Read the workers' replies until ``done()`` holds; a worker whose pipe closes has died."""
        while not done():
            for key, _ in self._selector.select():
                w: _Worker = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    self._selector.unregister(key.fd)
                    raise self._died(w)
                w.buffer += chunk
                *lines, w.buffer = w.buffer.split(b"\n")
                for line in lines:
                    self._handle(w, line.decode(errors="replace").strip())

    def _dispatch(self) -> None:
        """Hand the next positions, one per free slot, each to the worker with the fewest queued: the
        workers render ahead into every free slot while the trainer trains."""
        while self._free:
            w = min(self._workers, key=lambda w: (len(w.inflight), w.number))
            slot = self._free.popleft()
            position = self._next
            self._next += 1
            self._slot_of[position] = slot
            w.inflight.append((position, slot))
            self._send(w, f"render {self._index(position)} {slot}")

    # ------------------------------------------------------------------ batches
    def start(self, position: int = 0) -> None:
        """Begin at ``position`` (the scenes this rank consumed before: a resumed run's checkpoint)."""
        if self.position is not None:
            raise RuntimeError("SceneStream.start: already started")
        self.position = self._next = int(position)
        self._dispatch()

    def _empty_batch(self) -> dict[str, torch.Tensor]:
        views = min(self.layout.views, 2) if self.pair_seed is not None else self.layout.views
        out = {}
        for f in self.layout.fields:
            shape = (self.batch, views, *f.shape[1:]) if f.shape else (self.batch,)
            dtype = torch.int16 if f.name in _INT16_FIELDS else _TORCH_DTYPES[f.dtype]
            out[f.name] = torch.empty(shape, dtype=dtype, pin_memory=self.pin)
        return out

    def next_batch(self) -> dict[str, torch.Tensor]:
        """The next ``batch`` scenes in position order: {field: tensor [B, V, ...]} and ``scene_id`` int64 [B],
        as a `SceneDataset` batch (instance and category int16, V = 2 with a pair seed)."""
        if self.position is None:
            raise RuntimeError("SceneStream.next_batch: call start(position) first")
        out = self._empty_batch()
        for i in range(self.batch):
            position = self.position
            self._wait(lambda: position in self._ready)
            self._ready.discard(position)
            slot = self._slot_of.pop(position)
            self._copy(slot, position, out, i)
            self._free.append(slot)
            self.position = position + 1
            self._dispatch()
        return out

    def _copy(self, slot: int, position: int, out: dict[str, torch.Tensor], i: int) -> None:
        """Copy slot ``slot`` (the scene at ``position``) into row ``i`` of ``out``, once, then let go of it."""
        pair = view_pair(self.pair_seed, self.layout.views, position)
        for name, array in self.ring.views(slot).items():
            if name == "scene_id":
                out[name][i] = int(array)
                continue
            if name in _INT16_FIELDS:
                array = array.view(np.int16)
            if pair is None:
                out[name][i].copy_(torch.from_numpy(array))
            else:
                for j, v in enumerate(pair):
                    out[name][i, j].copy_(torch.from_numpy(array[v]))

    def state(self, position: int) -> dict[str, Any]:
        """What a checkpoint records: the render config, its ``config_hash`` and ``render_id``, and
        ``position``, the scenes of this rank the checkpointed steps consumed (a resume `start`s there)."""
        return {
            "render": self.render,
            "overrides": list(self.overrides),
            "config_hash": self.info.config_hash,
            "render_id": self.info.render_id,
            "position": int(position),
        }

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers]

    def close(self) -> None:
        """Stop the workers and unlink the shared memory (idempotent)."""
        try:
            self._selector.close()
        except (OSError, ValueError):
            pass
        self._finalizer()

    def __enter__(self) -> "SceneStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
