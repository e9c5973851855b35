"""One prepared GPU check: set-up, EGL render speed, streaming, training ratio, torch.compile, NCCL.

Run through ``bash scripts/gpu_check.sh`` (which picks the interpreter). Each step is a child
process with its own time limit, killed with its whole process group when the limit or the overall
``--deadline`` passes (recorded as ``timeout``; the check goes on). One JSON file is written after
every step (temporary file, then rename), so it holds what was measured even if the call is cut:
``--out PATH``, else ``$OUT/gpu_check.json`` when ``$OUT`` is set, else ``gpu_check.json``. The
full output of every step goes to the same path with ``.log``.

Steps (GPU sizes; ``--dry-run`` runs the same commands on the CPU at tiny sizes):

* ``setup``: installs ``.gpu-carry/`` (scripts/gpu_carry.py) into a folder put first on
  ``PYTHONPATH``, builds synthssl from this checkout into it, and imports everything a run needs;
  the dry run only imports (its environment is the project's own);
* ``gl_probe``: an 8x8 render through EGL, with the GL vendor and renderer it ran on (on the GPU
  the step fails when that is not NVIDIA's driver: the render figures would be llvmpipe's);
* ``render_scaling``: ``bench/bench_render.py --scaling`` at 128 px, 1 and N = one per core
  render workers (pairs/s, scaling efficiency, pairs per CPU-second);
* ``stream``: ``bench/bench_stream.py --device cuda``: pairs/s delivered against consumed, the
  GPU-idle fraction, render workers per training process (``missing`` while the file is absent);
* ``train_ratio``: ``bench/bench_train.py`` with bf16 autocast and channels_last, ResNet-18 at
  128 px: training steps against the bare backbone;
* ``compile``: the same benchmark, few steps, with ``--compile`` (skipped in the dry run:
  inductor on 2 CPU cores takes minutes);
* ``nccl``: two processes (``torch.distributed.run``) training ``synthssl.train.cli`` with NCCL
  when there are 2 GPUs; skipped otherwise.

Exit status: 0 when every step is ok, skipped or missing; 1 when one failed or timed out; 2 for a
usage error, and on a machine without CUDA (without ``--dry-run``), with one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_carry  # noqa: E402  (scripts/ is no package)

REPO = Path(__file__).resolve().parents[1]
SITE = Path(tempfile.gettempdir()) / "synthssl-gpu-check" / "site"
NVIDIA_EGL_VENDOR = Path("/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json")
DEFAULT_DEADLINE_S = {"gpu": 450.0, "dry-run": 180.0}
#: The device call, as `--prepare` prints it (the device tool's `run`).
RUN_TIMEOUT_S = 540
STEP_NAMES = ("setup", "gl_probe", "render_scaling", "stream", "train_ratio", "compile", "nccl")
STDERR_TAIL_LINES = 25

MACHINE_CODE = """
import json, os, platform, sys
out = {"python": sys.version.split()[0], "executable": sys.executable, "cpu_count": os.cpu_count(),
       "platform": platform.platform()}
try:
    import torch
except Exception as exc:
    out["torch_error"] = f"{type(exc).__name__}: {exc}"
else:
    out["torch"] = torch.__version__
    out["torch_cuda"] = torch.version.cuda
    out["cuda_available"] = torch.cuda.is_available()
    out["gpu_count"] = torch.cuda.device_count() if out["cuda_available"] else 0
    out["cudnn"] = torch.backends.cudnn.version() if out["cuda_available"] else None
    out["gpus"] = [
        {"name": p.name, "capability": f"{p.major}.{p.minor}", "memory_gib": round(p.total_memory / 2**30, 1),
         "multiprocessors": p.multi_processor_count}
        for p in (torch.cuda.get_device_properties(i) for i in range(out["gpu_count"]))
    ]
print(json.dumps(out))
"""

GL_PROBE_CODE = """
import json, sys
from synthssl.render import gl_compat
backend = gl_compat.use_backend(sys.argv[1])
pyrender = gl_compat.import_pyrender()
renderer = pyrender.OffscreenRenderer(8, 8)
scene = pyrender.Scene()
scene.add(pyrender.IntrinsicsCamera(4.0, 4.0, 4.0, 4.0))
renderer.render(scene, flags=pyrender.RenderFlags.DEPTH_ONLY)
from OpenGL import GL
info = {k: GL.glGetString(getattr(GL, "GL_" + k.upper())).decode() for k in ("vendor", "renderer", "version")}
renderer.delete()
print(json.dumps({"backend": backend, **info}))
"""

# Two ranks of `train-ssl` on analytic shards (tests/helpers), launched as docs/train.md says.
NCCL_CODE = """
import json, subprocess, sys, tempfile
from pathlib import Path
sys.path.insert(0, "tests")
from helpers.analytic_scene import write_shards
device, size, batch, steps, photos = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with tempfile.TemporaryDirectory(prefix="gpu-check-nccl-") as tmp:
    tmp = Path(tmp)
    write_shards(tmp / "shards", num_scenes=2 * batch, shard_size=2 * batch, size=max(size, 64))
    overrides = {
        "data.shards": f"[{tmp / 'shards'}]", "data.photos": photos, "data.image_size": size,
        "data.batch_size": batch, "data.workers": 2, "train.device": device, "train.steps": steps,
        "train.precision": "bf16" if device == "cuda" else "fp32", "train.out": str(tmp / "run"),
        "train.checkpoint_every": 0, "model.channels_last": "true", "log.every": 1,
        "log.tensorboard": "false", "log.progress": "false", "method.name": "synthetic_contrast",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "synthssl.train.cli"] + [f"{k}={v}" for k, v in overrides.items()]
    rc = subprocess.call(cmd, stdout=sys.stderr)
    metrics = tmp / "run" / "metrics.jsonl"
    lines = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()] if metrics.is_file() else []
    config = (tmp / "run" / "config.yaml").read_text() if (tmp / "run" / "config.yaml").is_file() else ""
world = [x.split(":", 1)[1].strip() for x in config.splitlines() if x.strip().startswith("world_size:")]
print(json.dumps({"returncode": rc, "world_size": int(world[0]) if world else None,
                  "steps": lines[-1]["step"] if lines else 0, "loss_first": lines[0]["loss"] if lines else None,
                  "loss_last": lines[-1]["loss"] if lines else None,
                  "images_per_s_last": lines[-1].get("images_per_s") if lines else None}))
sys.exit(rc)
"""


@dataclass
class Step:
    """One measurement: a command with a time limit, or a reason it does not run."""

    name: str
    what: str
    limit_s: float
    command: list[str] | None = None
    skip_reason: str | None = None
    missing: Path | None = None
    """a file the command needs that this checkout may not have yet."""
    check: object = None
    """called with the parsed JSON; returns a reason the step failed, or None."""
    result: dict = field(default_factory=dict)


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def gl_check_gpu(out: dict) -> str | None:
    """On the GPU the probe must run on NVIDIA's driver, not on a software rasterizer."""
    if "nvidia" not in out.get("vendor", "").lower():
        return f"EGL rendered with {out.get('vendor')!r} / {out.get('renderer')!r}, not NVIDIA's driver"
    return None


def nccl_check(out: dict) -> str | None:
    """Both ranks must have joined the process group."""
    return None if out.get("world_size") == 2 else f"world_size {out.get('world_size')}, expected 2"


def plan(dry_run: bool, machine: dict, py: str) -> list[Step]:
    """The steps in order, with their commands for a GPU run or a dry run."""
    cores = machine.get("cpu_count") or 1
    gpus = machine.get("gpu_count") or 0
    photos = "/usr/share/backgrounds"
    steps: list[Step] = []
    if dry_run:
        setup = [py, _relative(REPO / "scripts" / "gpu_carry.py"), "verify"]
    else:
        setup = [py, _relative(REPO / "scripts" / "gpu_carry.py"), "install", "--site", str(SITE)]
    steps.append(Step("setup", "install the carried packages and synthssl, import everything", 120.0, setup))
    backend = "auto" if dry_run else "egl"
    steps.append(
        Step(
            "gl_probe",
            "an 8x8 render through EGL and the GL driver it ran on",
            60.0,
            [py, "-c", GL_PROBE_CODE, backend],
            check=None if dry_run else gl_check_gpu,
        )
    )
    render = [py, "bench/bench_render.py", "--scaling", "--backend", backend]
    if dry_run:
        render += ["--workers", "2", "--scenes-per-worker", "4", "--size", "64"]
    else:
        render += ["--workers", str(cores), "--scenes-per-worker", "48", "--size", "128"]
    steps.append(Step("render_scaling", "render-scenes pairs/s with 1 and N workers", 150.0, render))
    stream = [py, "bench/bench_stream.py"]
    if dry_run:
        stream += ["--quick", "--device", "cpu", "--workers", "1"]
    else:
        stream += ["--device", "cuda", "--workers", str(max(cores - 2, 1)), "--size", "128"]
        stream += ["--precision", "bf16", "--channels-last"]  # consumed at the training step's own settings
    steps.append(
        Step(
            "stream",
            "the streaming source: pairs/s delivered against consumed",
            150.0,
            stream,
            missing=REPO / "bench" / "bench_stream.py",
        )
    )
    train = [py, "bench/bench_train.py", "--precision", "bf16", "--channels-last", "--arch", "resnet18"]
    if dry_run:
        tiny = ["--device", "cpu", "--size", "32", "--batch", "2", "--real-batch", "2", "--scenes", "8"]
        tiny += ["--workers", "0", "--steps", "1", "--rounds", "1", "--warmup", "1"]
        steps.append(Step("train_ratio", "training steps against the bare backbone", 120.0, train + tiny))
        steps.append(
            Step(
                "compile",
                "torch.compile of the backbone and the training step",
                180.0,
                skip_reason="dry run: torch.compile on 2 CPU cores takes minutes (the GPU run compiles)",
            )
        )
    else:
        gpu = ["--device", "cuda", "--size", "128", "--scenes", "128", "--workers", str(max(cores - 4, 1))]
        full = gpu + ["--batch", "256", "--real-batch", "64", "--steps", "20", "--rounds", "3", "--warmup", "3"]
        steps.append(Step("train_ratio", "training steps against the bare backbone", 150.0, train + full))
        few = gpu + ["--batch", "64", "--real-batch", "16", "--steps", "5", "--rounds", "1", "--warmup", "2"]
        steps.append(
            Step(
                "compile",
                "torch.compile of the backbone and the training step",
                180.0,
                train + few + ["--compile"],
            )
        )
    if gpus >= 2:
        nccl = [py, "-c", NCCL_CODE, "cuda", "128", "128", "30", photos]
        what = "2 processes training with NCCL (torch.distributed.run)"
        steps.append(Step("nccl", what, 120.0, nccl, check=nccl_check))
    else:
        reason = "no 2 GPUs" + (" (dry run)" if dry_run else f" ({gpus} visible)")
        steps.append(Step("nccl", "2 processes training with NCCL (torch.distributed.run)", 120.0, skip_reason=reason))
    return steps


def last_json(text: str) -> dict | None:
    """The JSON object that ends ``text`` (it starts at the beginning of a line), or None."""
    decoder = json.JSONDecoder()
    for m in reversed(list(re.finditer(r"(?m)^\{", text))):
        try:
            obj, end = decoder.raw_decode(text, m.start())
        except ValueError:
            continue
        if not text[end:].strip() and isinstance(obj, dict):
            return obj
    return None


def machine_info(py: str) -> dict:
    """Interpreter, torch, CUDA and GPUs (from torch), and nvidia-smi's name, driver and memory."""
    try:
        res = subprocess.run([py, "-c", MACHINE_CODE], capture_output=True, text=True, timeout=120)
        info = last_json(res.stdout) or {"error": (res.stderr.strip().splitlines() or ["no output"])[-1]}
    except (OSError, subprocess.TimeoutExpired) as exc:
        info = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        rows = [[c.strip() for c in line.split(",")] for line in smi.stdout.strip().splitlines() if line.strip()]
        info["nvidia_smi"] = [{"name": r[0], "driver": r[1], "memory": r[2]} for r in rows if len(r) == 3]
    except (OSError, subprocess.TimeoutExpired):
        info["nvidia_smi"] = None
    return info


def commit_info() -> dict:
    """This checkout's commit; on the GPU machine (no .git) the one ``--prepare`` recorded."""
    if (REPO / ".git").exists():
        info = gpu_carry.commit_info()
        if info["hash"]:
            return {**info, "source": "git"}
    carried = gpu_carry.DEFAULT_DIR / "commit.json"
    if carried.is_file():
        return {**json.loads(carried.read_text()), "source": "recorded by --prepare"}
    return {"hash": None, "dirty": None, "source": None}


def step_env(dry_run: bool) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if not dry_run:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), env.get("PYTHONPATH")]))
        env["PATH"] = os.pathsep.join([str(SITE / "bin"), env.get("PATH", "")])
        env["PYOPENGL_PLATFORM"] = "egl"
        if NVIDIA_EGL_VENDOR.is_file():
            env.setdefault("__EGL_VENDOR_LIBRARY_FILENAMES", str(NVIDIA_EGL_VENDOR))
    return env


class Report:
    """The JSON file and its log, rewritten after every step."""

    def __init__(self, path: Path, body: dict):
        self.path = path
        self.log_path = path.with_suffix(".log")
        self.body = body
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.body, indent=1) + "\n")
        os.replace(tmp, self.path)

    def append_log(self, text: str) -> None:
        with self.log_path.open("a") as f:
            f.write(text)


def say(t0: float, message: str) -> None:
    print(f"[gpu_check +{time.monotonic() - t0:6.1f} s] {message}", flush=True)


def run_step(step: Step, limit: float, env: dict, report: Report, t0: float) -> dict:
    """Run ``step.command`` for at most ``limit`` seconds; its entry of the report."""
    entry: dict = {"what": step.what, "limit_s": round(limit, 1), "command": step.command}
    shown = " ".join(c if len(c) < 80 else "<code>" for c in step.command)
    say(t0, f"{step.name}: start, limit {limit:.0f} s: {shown}")
    start = time.monotonic()
    proc = subprocess.Popen(
        step.command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout kills its workers too
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 30)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                out, err = proc.communicate(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            out, err = "", ""
    seconds = time.monotonic() - start
    head = f"===== {step.name} (exit {proc.returncode}, {seconds:.1f} s)"
    report.append_log(f"{head}\n--- stdout\n{out}\n--- stderr\n{err}\n")
    parsed = last_json(out or "")
    entry.update(seconds=round(seconds, 2), returncode=proc.returncode, result=parsed)
    if timed_out:
        entry.update(status="timeout", reason=f"killed after {limit:.0f} s")
    elif proc.returncode != 0:
        entry.update(status="failed", reason=f"exit status {proc.returncode}")
    elif parsed is None:
        entry.update(status="failed", reason="no JSON object at the end of its output")
    else:
        problem = step.check(parsed) if step.check else None
        entry.update(status="failed" if problem else "ok", **({"reason": problem} if problem else {}))
    if entry["status"] != "ok":
        entry["stderr_tail"] = (err or "").strip().splitlines()[-STDERR_TAIL_LINES:]
    why = f" ({entry['reason']})" if "reason" in entry else ""
    say(t0, f"{step.name}: {entry['status']} in {seconds:.1f} s{why}")
    if entry["status"] != "ok":
        for line in entry["stderr_tail"][-5:]:
            print(f"    | {line}", flush=True)
    return entry


def default_out() -> Path:
    return Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else Path("gpu_check.json")


def print_run_call(summary: dict, carry: Path) -> None:
    """What --prepare prints: the sizes and the device call to make."""
    b = summary["bytes"]
    print(f"prepared {carry}: {b['carry'] / 2**20:.1f} MiB (tree {b['tree'] / 2**20:.1f} MiB; 64 MiB may travel)")
    print(f"  wheels: {', '.join(summary['wheels'])}")
    print(f"  pybullet: {summary['pybullet']}; debs: {len(summary['debs'])}; photos: {summary['photos']['photos']}")
    print(f"  commit: {summary['commit']['hash']}" + (" (uncommitted changes)" if summary["commit"]["dirty"] else ""))
    print("the device call (the device tool's run):")
    call = {"command": "bash scripts/gpu_check.sh", "carry": [_relative(carry)], "timeout_s": RUN_TIMEOUT_S}
    print(f"  {json.dumps(call)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path, default=None, help="the JSON file (default $OUT/gpu_check.json)")
    p.add_argument("--out", dest="out_opt", type=Path, default=None, help="the JSON file (same as OUT)")
    p.add_argument("--dry-run", action="store_true", help="every step on the CPU at tiny sizes")
    p.add_argument("--prepare", action="store_true", help="fill .gpu-carry/ here and print the device call")
    p.add_argument("--python312", default=None, help="with --prepare: a CPython 3.12 to build pybullet with")
    p.add_argument("--deadline", type=float, default=None, help="seconds for all steps (GPU 450, dry run 180)")
    p.add_argument("--steps", default=None, help=f"a subset of {','.join(STEP_NAMES)} (setup always runs)")
    args = p.parse_args(argv)
    if args.prepare:
        try:
            summary = gpu_carry.prepare(gpu_carry.DEFAULT_DIR, args.python312)
        except gpu_carry.CarryError as exc:
            print(f"gpu_check --prepare: {exc}", file=sys.stderr)
            return 2
        print_run_call(summary, gpu_carry.DEFAULT_DIR)
        return 0
    wanted = set(STEP_NAMES)
    if args.steps:
        wanted = {s.strip() for s in args.steps.split(",") if s.strip()}
        unknown = sorted(wanted - set(STEP_NAMES))
        if unknown:
            known = ", ".join(STEP_NAMES)
            print(f"gpu_check: --steps: unknown {', '.join(unknown)}; expected among {known}", file=sys.stderr)
            return 2
        wanted.add("setup")
    mode = "dry-run" if args.dry_run else "gpu"
    deadline = args.deadline if args.deadline is not None else DEFAULT_DEADLINE_S[mode]
    if deadline <= 0:
        print(f"gpu_check: --deadline: expected seconds > 0, got {deadline:g}", file=sys.stderr)
        return 2
    py = sys.executable
    t0 = time.monotonic()
    machine = machine_info(py)
    if not args.dry_run and not machine.get("cuda_available"):
        why = machine.get("torch_error") or machine.get("error") or "torch.cuda.is_available() is false"
        print(f"gpu_check: no CUDA device ({why}); use --dry-run to check the script on CPU", file=sys.stderr)
        return 2
    out_path = (args.out_opt or args.out or default_out()).resolve()
    report = Report(
        out_path,
        {
            "check": "synthssl scripts/gpu_check.sh",
            "mode": mode,
            "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "deadline_s": deadline,
            "seconds": None,
            "commit": commit_info(),
            "machine": machine,
            "steps": {},
            "ok": None,
        },
    )
    say(t0, f"{mode} on {machine.get('cpu_count')} cores, {machine.get('gpu_count', 0)} GPU(s); writing {out_path}")
    env = step_env(args.dry_run)
    setup_ok = True
    for step in plan(args.dry_run, machine, py):
        left = deadline - (time.monotonic() - t0)
        skip = step.skip_reason
        if skip is None and step.name not in wanted:
            skip = "not selected (--steps)"
        if skip is None and not setup_ok:
            skip = "set-up failed"
        if skip is None and left < 5:
            skip = f"overall deadline ({deadline:.0f} s) reached"
        if skip is None and step.missing is not None and not step.missing.is_file():
            entry = {"what": step.what, "status": "missing", "reason": f"{_relative(step.missing)} does not exist"}
            say(t0, f"{step.name}: missing ({entry['reason']})")
        elif skip is not None:
            entry = {"what": step.what, "status": "skipped", "reason": skip}
            say(t0, f"{step.name}: skipped ({skip})")
        else:
            entry = run_step(step, min(step.limit_s, left), env, report, t0)
        if step.name == "setup" and entry["status"] != "ok":
            setup_ok = False
        report.body["steps"][step.name] = entry
        report.body["seconds"] = round(time.monotonic() - t0, 1)
        report.save()
    statuses = [e["status"] for e in report.body["steps"].values()]
    report.body["ok"] = all(s in ("ok", "skipped", "missing") for s in statuses)
    report.save()
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
    say(t0, f"done: {counts}; {out_path}")
    return 0 if report.body["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
