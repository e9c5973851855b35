"""scripts/gpu_check.sh: the dry run writes every step into one JSON file; without CUDA the real
run is one line and exit 2; step limits kill a step's whole process group; the 2-process launch of
the NCCL step trains (with gloo on the CPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_carry  # noqa: E402
import gpu_check  # noqa: E402

NO_CUDA = not torch.cuda.is_available()
STEP_KEYS = {"what", "status", "limit_s", "command", "seconds", "returncode", "result"}


def _check(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_without_cuda_it_exits_2_with_one_line(tmp_path):
    res = _check([str(tmp_path / "check.json")], timeout=120)
    assert res.returncode == 2
    assert res.stderr == (
        "gpu_check: no CUDA device (torch.cuda.is_available() is false); use --dry-run to check the script on CPU\n"
    )
    assert res.stdout == ""
    assert not (tmp_path / "check.json").exists()


def test_unknown_step_is_one_line_and_exit_2(tmp_path):
    res = _check(["--dry-run", "--steps", "render_scaling,warp", str(tmp_path / "check.json")], timeout=60)
    assert res.returncode == 2
    expected = "gpu_check: --steps: unknown warp; expected among " + ", ".join(gpu_check.STEP_NAMES) + "\n"
    assert res.stderr == expected


@pytest.mark.slow
@pytest.mark.gl
def test_dry_run_writes_every_step(tmp_path):
    out = tmp_path / "check.json"
    t = time.monotonic()
    res = _check(["--dry-run", str(out)], timeout=240)
    wall = time.monotonic() - t
    assert res.returncode == 0, res.stdout + res.stderr
    assert wall < 180 + 30  # the deadline, and the machine info gathered before it counts
    report = json.loads(out.read_text())
    assert set(report) == {"check", "mode", "started_utc", "deadline_s", "seconds", "commit", "machine", "steps", "ok"}
    assert report["mode"] == "dry-run" and report["ok"] is True and report["deadline_s"] == 180.0
    assert re.fullmatch(r"[0-9a-f]{40}", report["commit"]["hash"]) and report["commit"]["source"] == "git"
    assert report["machine"]["cuda_available"] is False and report["machine"]["gpu_count"] == 0
    assert report["machine"]["torch"] == torch.__version__
    assert list(report["steps"]) == list(gpu_check.STEP_NAMES)
    steps = report["steps"]
    stream_there = (ROOT / "bench" / "bench_stream.py").is_file()
    ran = ["setup", "gl_probe", "render_scaling", "train_ratio"] + (["stream"] if stream_there else [])
    for name in ran:
        assert steps[name]["status"] == "ok", (name, steps[name])
        assert set(steps[name]) == STEP_KEYS, name
        assert steps[name]["command"][0] == sys.executable
        assert 0 < steps[name]["seconds"] <= steps[name]["limit_s"]
    if not stream_there:
        assert steps["stream"] == {
            "what": "the streaming source: pairs/s delivered against consumed",
            "status": "missing",
            "reason": "bench/bench_stream.py does not exist",
        }
    assert steps["compile"]["status"] == "skipped" and steps["compile"]["reason"].startswith("dry run: ")
    assert steps["nccl"]["status"] == "skipped" and steps["nccl"]["reason"] == "no 2 GPUs (dry run)"
    assert steps["setup"]["result"]["versions"]["synthssl"] is not None
    assert steps["gl_probe"]["result"]["backend"] in ("egl", "osmesa") and steps["gl_probe"]["result"]["renderer"]
    render = steps["render_scaling"]["result"]
    assert (render["workers"], render["one_worker"]["scenes"], render["n_workers"]["scenes"]) == (2, 4, 8)
    assert render["pairs_per_second_1_worker"] > 0 and render["placement"] == "resting (on stable hull faces)"
    if stream_there:
        stream = steps["stream"]["result"]
        assert (stream["device"], stream["workers"]) == ("cpu", 1)
        assert stream["delivered_pairs_per_s"] > 0 and 0 <= stream["gpu_idle_fraction"] <= 1
    train = steps["train_ratio"]["result"]
    assert (train["device"], train["image_size"], train["precision"], train["channels_last"]) == (
        "cpu",
        32,
        "bfloat16",
        True,
    )
    assert train["ratio"] > 0
    log = out.with_suffix(".log").read_text()
    assert [line.split(" (")[0] for line in log.splitlines() if line.startswith("===== ")] == [
        f"===== {name}" for name in gpu_check.STEP_NAMES if steps[name]["status"] not in ("skipped", "missing")
    ]
    announced = [line for line in res.stdout.splitlines() if ": start, limit " in line]
    assert len(announced) == len(ran)


def test_a_step_past_its_limit_is_killed_with_its_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(120)\n"
    )
    step = gpu_check.Step("sleeper", "sleeps", 120.0, [sys.executable, "-c", code])
    report = gpu_check.Report(tmp_path / "r.json", {"steps": {}})
    entry = gpu_check.run_step(step, 3.0, dict(os.environ), report, time.monotonic())
    assert entry["status"] == "timeout" and entry["reason"] == "killed after 3 s"
    assert 3.0 <= entry["seconds"] < 20 and entry["result"] is None
    grandchild = int(pid_file.read_text())
    for _ in range(50):  # reaped by init once killed
        if not Path(f"/proc/{grandchild}").exists() or "zombie" in _state(grandchild):
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{grandchild}").exists() or "zombie" in _state(grandchild)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].splitlines()[0].lower()
    except (OSError, IndexError):
        return "zombie"


def test_the_step_output_is_the_json_object_that_ends_it():
    text = 'log line {not json}\n{\n "a": 1,\n "b": {"c": [1, 2]}\n}\n'
    assert gpu_check.last_json(text) == {"a": 1, "b": {"c": [1, 2]}}
    assert gpu_check.last_json('{"a": 1}\n{"b": 2}\n') == {"b": 2}
    assert gpu_check.last_json('{"a": 1}\ntrailing words\n') is None
    assert gpu_check.last_json("") is None


def test_the_gpu_probe_fails_on_a_software_rasterizer():
    nvidia = {"vendor": "NVIDIA Corporation", "renderer": "NVIDIA H100 80GB HBM3/PCIe/SSE2"}
    assert gpu_check.gl_check_gpu(nvidia) is None
    assert gpu_check.gl_check_gpu({"vendor": "Mesa", "renderer": "llvmpipe (LLVM 15.0.6, 256 bits)"}) == (
        "EGL rendered with 'Mesa' / 'llvmpipe (LLVM 15.0.6, 256 bits)', not NVIDIA's driver"
    )


def test_the_gpu_plan_sizes_every_step_for_the_machine():
    machine = {"cpu_count": 16, "gpu_count": 1}
    steps = {s.name: s for s in gpu_check.plan(False, machine, "python3")}
    assert list(steps) == list(gpu_check.STEP_NAMES)
    assert steps["setup"].command == ["python3", "scripts/gpu_carry.py", "install", "--site", str(gpu_check.SITE)]
    assert steps["render_scaling"].command[1:] == [
        "bench/bench_render.py",
        "--scaling",
        "--backend",
        "egl",
        "--workers",
        "16",
        "--scenes-per-worker",
        "48",
        "--size",
        "128",
    ]
    stream = ["bench/bench_stream.py", "--device", "cuda", "--workers", "14", "--size", "128", "--precision", "bf16"]
    stream += ["--channels-last"]
    assert steps["stream"].command[1:] == stream
    for name in ("train_ratio", "compile"):
        cmd = steps[name].command
        assert cmd[cmd.index("--precision") + 1] == "bf16" and "--channels-last" in cmd
        assert cmd[cmd.index("--device") + 1] == "cuda" and cmd[cmd.index("--size") + 1] == "128"
    assert "--compile" in steps["compile"].command and "--compile" not in steps["train_ratio"].command
    assert steps["nccl"].command is None and steps["nccl"].skip_reason == "no 2 GPUs (1 visible)"
    two = {s.name: s for s in gpu_check.plan(False, {"cpu_count": 16, "gpu_count": 2}, "python3")}
    assert two["nccl"].command[3:] == ["cuda", "128", "128", "30", "/usr/share/backgrounds"]
    assert two["nccl"].check({"world_size": 2, "steps": 30, "returncode": 0}) is None
    assert two["nccl"].check({"world_size": 1, "steps": 30, "returncode": 0}) == "world_size 1, expected 2"


def test_prepare_keeps_one_version_of_each_wheel(tmp_path, monkeypatch):
    wanted = {n: gpu_carry.installed_version(n) for n in gpu_carry.WHEELS}
    names = [f"{n.replace('-', '_')}-{v}-py3-none-any.whl" for n, v in wanted.items()]
    for name in names + ["trimesh-0.0.1-py3-none-any.whl"]:
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(gpu_carry, "run", lambda *a, **k: pytest.fail(f"downloaded {a}"))
    assert gpu_carry.prepare_wheels(tmp_path) == sorted(names)


@pytest.mark.slow
@pytest.mark.ddp
def test_the_two_process_launch_trains_with_two_ranks(tmp_path):
    """The NCCL step's launcher on the CPU (init_from_env picks gloo there)."""
    from bench_train import make_photos

    photos = make_photos(tmp_path / "photos", count=4)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-c", gpu_check.NCCL_CODE, "cpu", "32", "4", "2", str(photos)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = gpu_check.last_json(res.stdout)
    assert (out["returncode"], out["world_size"], out["steps"]) == (0, 2, 2)
    assert "2 ranks" in res.stderr
