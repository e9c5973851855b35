"""Ctrl-C during a render: stop once, clean up without being cut short, say what is kept.

While `render_dataset` runs, `InterruptOnce` is the SIGINT handler of the main thread: the
first Ctrl-C raises `KeyboardInterrupt` where the render is, and later ones are ignored, so
the clean-up that follows (stopping the workers, removing their temporary files, merging the
manifest of the finished shards) runs to its end. The previous handler is restored when the
render returns. The handler also records that it fired, and the render looks at that record
after each scene and shard (`InterruptOnce.check`): some libraries catch every exception
while they import their optional parts (trimesh does), which would swallow the interrupt.
The render then raises `RenderInterrupted`, a `KeyboardInterrupt` whose message says how many
finished shards are kept and names ``--resume``; ``render-scenes`` prints it as one line and
exits with 130 (128 + SIGINT).

The worker processes never see the Ctrl-C (`synthssl.render.worker_pool` starts them with
SIGINT ignored): the parent stops them.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class RenderInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a render; the message names the folder, the shards kept and ``--resume``."""


class InterruptOnce:
    """Context manager: SIGINT raises KeyboardInterrupt once, then is ignored until the block ends.

    Does nothing outside the main thread (signals are delivered to the main thread only), and
    keeps SIGINT ignored when it was ignored before.
    """

    def __init__(self) -> None:
        self._previous: signal.Handlers | object | None = None
        self._active = False
        self.fired = False
        """a Ctrl-C arrived while the block ran."""

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the clean-up after this one runs to its end
        self.fired = True
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise KeyboardInterrupt if a Ctrl-C arrived (also when the one it raised was swallowed)."""
        if self.fired:
            raise KeyboardInterrupt

    def __enter__(self) -> "InterruptOnce":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._active = True
            if self._previous is signal.SIG_IGN:  # started with Ctrl-C ignored (nohup, a background job): keep it so
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
            self._active = False


def interrupted_message(out: str, kept: int, released: bool) -> str:
    """The one line of a render stopped by Ctrl-C into ``out`` with ``kept`` finished shards
    (``released``: it had claimed nothing before, and the folder is as it was found)."""
    if released:
        where = f"no shard was finished; {out} is left as it was found"
    else:
        where = f"{kept} finished shard(s) in {out} are kept, no temporary file is left"
    return f"interrupted (Ctrl-C): {where}; run the same command with --resume to complete"


__all__ = ["EXIT_INTERRUPTED", "RenderInterrupted", "InterruptOnce", "interrupted_message"]
