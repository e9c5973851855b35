"""A render worker of a training stream: scenes rendered on request into shared-memory slots.

Run as ``python -m synthssl.render.stream`` by the training process (`synthssl.train.data.stream`),
which talks to it in lines of text, its stdin carrying the requests and its stdout the replies
(anything else the process prints goes to stderr):

1. trainer -> worker: one line of JSON, the job: ``{"config": NAME or YAML path or null (the
   defaults), "overrides": ["key=value", ...], "worker": k, "workers": N, "parent": PID,
   "fields": [...], "prog": "name for log lines"}``;
   worker -> trainer: ``hello {JSON}`` (``size``, ``views``, ``seed``, ``category_names``,
   ``config_hash``, ``render_id``, ``physics``) once its `SceneSource` is built and the photo and
   asset sets are mapped (`synthssl.render.pipeline.ready_worker_inputs`: start-up is paid
   once), or ``failed config MESSAGE`` (a bad key or file: the user's mistake) or ``failed start
   MESSAGE`` (anything else), and it exits.
2. ``attach NAME SLOTS`` -> ``attached``: map the `synthssl.dataset.stream_slots.SlotRing` named
   NAME (``SLOTS`` slots of the layout of (views, size, size, fields)).
3. ``render INDEX SLOT`` -> ``ready SLOT``, or ``failed render INDEX MESSAGE``: scene INDEX of the
   config, written into slot SLOT, as `SceneSource.render` returns it (so scene i is the same
   whichever worker renders it, and equals ``render-scenes``' scene i of the same content config).
4. ``quit`` or the end of stdin: the worker closes its GL context and exits.

Every MESSAGE is one line. The worker ignores SIGINT, SIGTERM and SIGUSR1 (the trainer spawns it
with them ignored: a Ctrl-C at the terminal or SLURM's warning signal reaches every process, and the
trainer, which checkpoints first, stops its workers itself), and dies with the trainer: Linux sends
it SIGKILL when its parent ends (``PR_SET_PDEATHSIG``), and a closed stdin or reply pipe ends it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from typing import Any, Optional, TextIO

from synthssl.core.config import ConfigError
from synthssl.core.console import one_line, setup_logging

#: The signals a stream worker ignores (SIGINT: Ctrl-C; SIGTERM and SIGUSR1: SLURM's stop and warning).
IGNORED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: Optional[int]) -> None:
    """Ask Linux to SIGKILL this process when its parent ends; exit now if it already has."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: a closed pipe still ends the worker
        pass
    if parent is not None and os.getppid() != parent:
        raise SystemExit(0)


def _reply_channel() -> TextIO:
    """The replies' own copy of stdout; file descriptor 1 then points at stderr, so that whatever a
    library prints on stdout (a C banner, a stray print) never mixes into the replies."""
    sys.stdout.flush()
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return reply


def _metadata(source: Any) -> dict[str, Any]:
    from .provenance import RENDER_ID_LENGTH, content_json

    cfg = source.config
    digest = hashlib.sha256(content_json(cfg.to_dict()).encode("utf-8")).hexdigest()
    return {
        "size": int(cfg.size),
        "views": int(cfg.views),
        "seed": int(cfg.seed),
        "category_names": list(source.category_names),
        "config_hash": digest,
        "render_id": digest[:RENDER_ID_LENGTH],
        "physics": source.physics,
    }


def _start(job: dict[str, Any], reply: TextIO) -> Any:
    """The job's `SceneSource`, after ``hello``; None after ``failed ...``."""
    from synthssl.core.extras import missing_modules

    from .worker_pool import rasterizer_threads_env

    missing = missing_modules("render")
    if missing:
        reply.write(
            f"failed config needs the synthssl[render] extra, which is not installed here (missing: "
            f"{', '.join(missing)}); install it with: pip install 'synthssl[render]'\n"
        )
        return None
    os.environ.update(rasterizer_threads_env(int(job.get("workers", 1))))  # before the GL context exists
    try:
        from .api import resolve_render_config

        cfg = resolve_render_config(job.get("config"), list(job.get("overrides") or []))  # before the GL stack loads
        from .api import SceneSource
        from .pipeline import ready_worker_inputs

        source = SceneSource(cfg)
        ready_worker_inputs(cfg)  # the photo and asset sets, mapped (built by the first worker to need them)
    except ConfigError as exc:
        reply.write(f"failed config {one_line(exc)}\n")
        return None
    except Exception as exc:  # noqa: BLE001 - a GL backend, a missing extra: the trainer names it
        reply.write(f"failed start {type(exc).__name__}: {one_line(exc)}\n")
        return None
    reply.write(f"hello {json.dumps(_metadata(source))}\n")
    return source


def serve(job: dict[str, Any], commands: TextIO, reply: TextIO) -> int:
    """Answer ``commands`` (the lines after the job) for ``job``; the exit status."""
    from synthssl.dataset.stream_slots import SlotLayout, SlotRing

    source = _start(job, reply)
    if source is None:
        return 2
    ring: Optional[SlotRing] = None
    try:
        for line in commands:
            word, *args = line.split() or [""]
            if word == "render" and ring is not None:
                index, slot = int(args[0]), int(args[1])
                try:
                    ring.write(slot, source.render(index))
                except Exception as exc:  # noqa: BLE001 - the trainer fails the run naming the scene
                    reply.write(f"failed render {index} {type(exc).__name__}: {one_line(exc)}\n")
                    continue
                reply.write(f"ready {slot}\n")
            elif word == "attach":
                cfg = source.config
                layout = SlotLayout.build(cfg.views, cfg.size, cfg.size, list(job.get("fields") or []))
                ring = SlotRing.attach(layout, int(args[1]), args[0])
                reply.write("attached\n")
            elif word == "quit":
                break
            else:
                reply.write(f"failed protocol unexpected request {line.strip()!r}\n")
                return 2
    except BrokenPipeError:  # the trainer is gone
        return 0
    finally:
        if ring is not None:
            ring.close()
        source.close()
    return 0


def main() -> int:
    """The worker process: read the job, then serve requests until ``quit`` or the end of stdin."""
    for sig in IGNORED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    reply = _reply_channel()
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)
    _die_with_parent(job.get("parent"))
    setup_logging(str(job.get("prog") or "render worker"), int(job.get("verbosity", -1)))
    try:
        return serve(job, sys.stdin, reply)
    except BrokenPipeError:
        return 0
    finally:
        _close_quietly(reply)


def _close_quietly(reply: TextIO) -> None:
    """Close the reply channel; when the trainer is gone, what is left in it goes to /dev/null instead
    of a BrokenPipeError at exit."""
    try:
        reply.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, reply.fileno())
        os.close(devnull)
    reply.close()


__all__ = ["IGNORED_SIGNALS", "serve", "main"]


if __name__ == "__main__":
    sys.exit(main())
