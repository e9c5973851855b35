"""Render faults (issue 11): a killed worker, render identity, checksums, tmp files, full disk."""
from __future__ import annotations

import os
import signal

from conftest import child_pids, cli, cmdline, one_line, start_cli, wait_for

from synthssl.dataset.validate import validate_directory

TINY = ("--size", "16", "--shard-size", "4", "--seed", "3", "--no-physics", "--no-progress")


def test_killed_worker_fails_fast_naming_it_and_resume_completes(tmp_path):
    out = tmp_path / "shards"
    args = ("--out", str(out), "--scenes", "24", "--workers", "2", *TINY)
    proc = start_cli("render.cli", *args)
    try:
        wait_for(lambda: (out / "shard-00000.h5").exists() or proc.poll() is not None, 240, "the first shard")
        workers = [p for p in child_pids(proc.pid) if "spawn_main" in cmdline(p) and "resource_tracker" not in cmdline(p)]
        assert workers, "no worker processes found"
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=30)  # a hang fails here
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    line = one_line(stderr)
    assert f"worker process {workers[0]} (killed by signal 9 (SIGKILL)) died while shard-" in line, line
    assert "--resume" in line and stdout == ""
    kept = sorted(p.name for p in out.glob("shard-*.h5"))
    assert kept and "shard-00000.h5" in kept and not list(out.glob("*.tmp-*"))
    assert validate_directory(out)["num_scenes"] == 4 * len(kept)  # the finished shards are intact

    done = cli("render.cli", *args, "--resume")
    assert done.returncode == 0, done.stderr
    assert validate_directory(out, deep=True)["num_scenes"] == 24
