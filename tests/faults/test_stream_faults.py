"""Faults of data.stream: a bad render config is one line (exit 2) before training; a killed render
worker, or Ctrl-C, ends the run in one line with no render worker and nothing in /dev/shm left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

import pytest
import torch
from helpers.faults import child_pids, cmdline, one_line, start_in_own_group, wait_for
from helpers.train_overrides import stream_overrides

from synthssl.dataset.stream_slots import leftover_blocks

pytestmark = [pytest.mark.gl, pytest.mark.ddp]


def _start_train(out: Path, **extra) -> subprocess.Popen:
    """``train-ssl`` on the stream in its own session (a Ctrl-C can reach its whole process group)."""
    args = stream_overrides(out, workers=2, **{"train.steps": 1000, "log.every": 1, **extra})
    return start_in_own_group("train.cli", *args)


def _trained_a_step(out: Path, proc: subprocess.Popen) -> bool:
    metrics = out / "metrics.jsonl"
    return proc.poll() is not None or (metrics.is_file() and metrics.read_text().count("\n") >= 1)


def _workers(pid: int) -> list[int]:
    return [p for p in child_pids(pid) if "synthssl.render.stream" in cmdline(p)]


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{p}").exists() for p in pids)


def _stop_after_a_step(
    out: Path, stop: Callable[[subprocess.Popen, list[int]], None]
) -> tuple[subprocess.Popen, list[int], str, str]:
    """Train from the stream into ``out`` with 2 render workers; after the first step, ``stop(proc,
    workers)``; then (proc, workers, stdout, stderr) once it ended (a hang fails the wait)."""
    proc = _start_train(out)
    try:
        wait_for(lambda: _trained_a_step(out, proc), 240, "the first training step")
        workers = _workers(proc.pid)
        assert len(workers) == 2, (workers, proc.poll())
        stop(proc, workers)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc, workers, stdout, stderr


@pytest.mark.slow
def test_a_killed_render_worker_fails_the_run_in_one_line_and_leaves_nothing(tmp_path):
    before = leftover_blocks()
    proc, workers, stdout, stderr = _stop_after_a_step(tmp_path / "run", lambda p, w: os.kill(w[0], signal.SIGKILL))
    assert proc.returncode == 1, stderr
    line = one_line(stderr)
    assert f"render worker process {workers[0]} (killed by signal 9 (SIGKILL)) died " in line, line
    assert "data.stream=demo" in line and "--resume" in line and stdout == ""
    assert _gone(workers) and leftover_blocks() == before


@pytest.mark.slow
def test_ctrl_c_checkpoints_stops_the_render_workers_and_leaves_nothing(tmp_path):
    before = leftover_blocks()
    out = tmp_path / "run"
    # a Ctrl-C at the terminal reaches the trainer and its workers
    proc, workers, _, stderr = _stop_after_a_step(out, lambda p, w: os.killpg(p.pid, signal.SIGINT))
    assert proc.returncode == 130, stderr
    assert one_line(stderr) == "train-ssl: interrupted; resume with --resume"
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] >= 1 and state["stream"]["position"] == state["step"] * 4
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()][-1] == state["step"]
    assert _gone(workers) and leftover_blocks() == before


@pytest.mark.slow
def test_a_render_config_the_workers_refuse_is_one_line_before_training(tmp_path, capsys):
    from synthssl.train.cli import main

    before = leftover_blocks()
    assert main(stream_overrides(tmp_path / "a", **{"data.stream": "nonexistent"})) == 2
    assert one_line(capsys.readouterr().err) == (
        "train-ssl: config error: data.stream / data.stream_set: nonexistent: config file not found; "
        "shipped configs: demo"
    )
    assert main(stream_overrides(tmp_path / "b", **{"data.stream_set": "[size=16]", "data.image_size": 32})) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("train-ssl: config error: data.image_size: 32 px cannot be cropped from the 16x16 px")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b" / "checkpoint.pt").exists()
    assert leftover_blocks() == before and not [p for p in child_pids(os.getpid()) if "render.stream" in cmdline(p)]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            {"data.shards": "[out/shards]"},
            "data.stream: expected no data.shards with it (data.shards=[]): data.stream renders the training "
            "scenes itself; or leave data.stream unset to train on data.shards",
        ),
        ({"data.stream_workers": 0}, "data.stream_workers: expected >= 1"),
        ({"data.stream": "null"}, "data.stream_set: expected [] without data.stream"),
    ],
)
def test_stream_keys_that_contradict_the_config_are_one_line_without_starting_a_worker(
    tmp_path, capsys, extra, expected
):
    from synthssl.train.cli import main

    assert main(stream_overrides(tmp_path / "run", **extra)) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"train-ssl: config error: {expected}"), line
