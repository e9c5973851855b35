"""Helpers of the fault suite: run the CLIs as a user would, look at their processes, tiny
training overrides, corrupt a shard's chunk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable


def start_in_own_group(module: str, *args: str) -> subprocess.Popen:
    """Start ``python -m synthssl.<module> ARGS`` as a terminal runs it: in its own process group (a
    Ctrl-C, ``os.killpg(pid, SIGINT)``, reaches it and its workers) and with SIGINT's default action,
    even when the test suite itself runs with SIGINT ignored (as a background job of a
    non-interactive shell is, and its children after it)."""
    return subprocess.Popen(
        [sys.executable, "-m", f"synthssl.{module}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def start_cli(module: str, *args: str) -> subprocess.Popen:
    """Start ``python -m synthssl.<module> ARGS`` in the background (text pipes)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", f"synthssl.{module}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 20 ms until it holds; AssertionError naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def child_pids(pid: int) -> list[int]:
    """Direct children of process ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return sorted(out)


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def one_line(stderr: str) -> str:
    """The user-facing error: assert stderr holds no traceback and return its last line."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    return lines[-1]


def train_args(shards: Path, out: Path, **extra) -> list[str]:
    """Dotted overrides of a seconds-long CPU SimCLR run (32 px, batch 4, 4 steps)."""
    items = {
        "data.shards": f"[{shards}]",
        "data.image_size": 32,
        "data.batch_size": 4,
        "data.workers": 0,
        "train.steps": 4,
        "train.out": str(out),
        "train.device": "cpu",
        "train.checkpoint_every": 2,
        "log.every": 1,
        "log.tensorboard": "false",
        "log.progress": "false",
        "model.channels_last": "false",
        "method.name": "simclr",
        "method.projection.hidden_dim": 32,
        "method.projection.dim": 16,
    }
    items.update(extra)
    return [f"{k}={v}" for k, v in items.items()]


def corrupt_chunk(path: Path, dataset: str, scene: int) -> None:
    """Overwrite the stored bytes of one scene's chunk of ``dataset`` (LZF then fails to decode it)."""
    import h5py

    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info_by_coord((scene,) + (0,) * (f[dataset].ndim - 1))
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
