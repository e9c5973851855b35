"""Benchmark the renderer per process: start-up, steady state, pairs per CPU-second per stage; ``--against REV``.

Every figure is at ``--size`` (128) px, 2 views, every map written, physics on, photo textures
(the default config), written as shards with the default compression. Each arm is one render
worker in a subprocess (bench/render_probe.py) importing a source tree: this checkout's files, and
with ``--against REV`` the tree of commit REV (``git archive``) measured in the same run, so that
the ratio compares the two on the same machine at the same moment. Prints one JSON object:

* ``startup_seconds``: from spawning the worker process to its first scene rendered and written
  (imports, GL context, physics, what the worker prepares, one scene), median of
  ``--startup-repeats`` spawns, with the photo folder as it is and with a folder of
  ``--photo-multiple`` times as many photos (the same files under more names), both folders and
  both arms interleaved in every round;
  ``prepare_seconds``: what the tree's `render_dataset` does once per run before it spawns its
  workers (``ready_worker_inputs``: decoding the photo set and parsing the asset set into their
  caches), the first time (``build``) and again (``reuse``), per photo folder (the asset set,
  the same for both, is built with the first); the caches live in a temporary
  ``SYNTHSSL_CACHE_DIR``, so every run of the benchmark builds them afresh;
* ``steady``: after a warm-up shard of ``--warmup`` scenes, ``--rounds`` shards of ``--block``
  scenes each, the arms taking turns (the first arm alternates): ``pairs_per_cpu_second`` (CPU
  seconds of the worker process, all its threads: llvmpipe's rasterizer threads included),
  ``pairs_per_second`` (wall), ``photo_decodes_per_pair`` (``cv2.imread`` calls), and per stage the
  CPU milliseconds per pair and pairs per CPU-second (the tree's own stage timings, measured in CPU
  time);
* ``ratio``: this checkout over REV, the median of the per-round ratios of pairs per CPU-second
  (and each round's), and the start-ups' ratio.

Each worker gets ``LP_NUM_THREADS=--lp-threads`` (default ``tree``: what each tree's own render
gives each of N workers on N cores; a number makes both arms rasterize alike), and the GL backend
resolved once by this process (``PYOPENGL_PLATFORM``), as `render_dataset` hands it to its workers.

    python bench/bench_render.py [--against a247366] [--rounds 5] [--block 16] [--warmup 48] [--set KEY=VALUE]
        [--set-current KEY=VALUE]

``--set`` overrides the config of both arms; ``--set-current`` that of this checkout only (an option
that REV does not have, measured against REV's defaults).

``--scaling`` runs the other benchmark of this file instead: pairs/s with 1 and N spawned workers
through `render_dataset` in one run and the scaling efficiency
(``[--scenes-per-worker 24] [--workers N] [--quick]``, see `scaling_main`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).resolve().with_name("render_probe.py")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

#: Stages that are seconds per scene (the others count steps or tries).
TIME_STAGES = ("build", "physics", "gl_build", "geometry_passes", "color_passes", "maps", "write")
SHARDS_PER_WORKER = 4


# -- the source trees ------------------------------------------------------------
def extract_tree(rev: str, dest: Path) -> str:
    """Write commit ``rev``'s files into ``dest`` (``git archive``: the repository's state is not
    touched); returns the full commit hash. ValueError naming ``rev`` when git does not know it."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise ValueError(f"--against: {rev!r} is not a commit of {REPO}")
    commit = found.stdout.strip()
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit], capture_output=True, check=True
    )
    with tempfile.TemporaryFile() as buf:
        buf.write(archive.stdout)
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            tar.extractall(dest, filter="data")
    return commit


def photo_files(folder: Path) -> list[Path]:
    """The photos of ``folder`` (searched recursively, as the renderer does), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())


def photo_folder_times(src: Path, dest: Path, multiple: int) -> int:
    """Fill ``dest`` with ``multiple`` links to every photo of ``src`` (distinct names, same
    files); returns the number of photos in ``dest``."""
    photos = photo_files(src)
    dest.mkdir(parents=True, exist_ok=True)
    for k in range(multiple):
        for i, p in enumerate(photos):
            (dest / f"{k:02d}-{i:04d}{p.suffix.lower()}").symlink_to(p.resolve())
    return multiple * len(photos)


# -- one worker under measurement ------------------------------------------------
class Probe:
    """A render worker process (bench/render_probe.py) importing ``code`` (None: the installed
    synthssl); `ready` returns its start-up, `shard` measures one shard."""

    def __init__(self, code: Path | None, cfg: dict, lp_threads: str, prepare: bool = False):
        env = {**os.environ, "LP_NUM_THREADS": lp_threads, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, str(PROBE), "--config", json.dumps(cfg)]
        if code is not None:
            cmd += ["--code", str(code)]
        if prepare:
            cmd.append("--prepare")
        self.spawned_at = time.time()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"render probe exited with status {code} (its stderr is above)")
        return json.loads(line)

    def ready(self) -> float:
        """Seconds from the spawn to the first scene written."""
        return self._answer()["first_scene_at"] - self.spawned_at

    def prepared(self) -> float:
        """Seconds the ``--prepare`` run spent readying the run's shared inputs."""
        seconds = self._answer()["seconds"]
        self.proc.wait()
        return seconds

    def shard(self, index: int, first: int, count: int) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": "shard", "index": index, "first": first, "count": count}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Arm:
    """One source tree under measurement."""

    name: str
    code: Path | None
    startup: dict[str, list[float]] = field(default_factory=dict)
    prepare: dict[str, dict[str, float]] = field(default_factory=dict)
    rounds: list[dict] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    """render config overrides for this arm only (``--set-current``)."""

    def config(self, cfg: dict) -> dict:
        """``cfg`` with this arm's own overrides."""
        return with_overrides(cfg, self.overrides, "--set-current")


def measure_startup(arms: list[Arm], cfgs: dict[str, dict], repeats: int, lp_threads: str) -> None:
    """Each arm readies each config's shared inputs twice (build, then reuse); then ``repeats``
    rounds, each spawning every arm's worker once per config (configs and arms interleaved, the
    first arm alternating), recording start-ups."""
    for label, cfg in cfgs.items():
        for arm in arms:
            arm.prepare[label] = {
                k: round(Probe(arm.code, arm.config(cfg), lp_threads, prepare=True).prepared(), 3)
                for k in ("build", "reuse")
            }
    for r in range(repeats):
        for label, cfg in cfgs.items():
            for arm in arms if r % 2 == 0 else arms[::-1]:
                probe = Probe(arm.code, arm.config(cfg), lp_threads)
                try:
                    arm.startup.setdefault(label, []).append(probe.ready())
                finally:
                    probe.close()


def measure_steady(arms: list[Arm], cfg: dict, warmup: int, block: int, rounds: int, lp_threads: str) -> None:
    """One worker per arm: a warm-up shard, then ``rounds`` shards of ``block`` scenes, arms taking
    turns (the same scenes for every arm)."""
    probes = {}
    try:
        for arm in arms:
            probes[arm.name] = Probe(arm.code, arm.config(cfg), lp_threads)
            probes[arm.name].ready()
        for arm in arms:
            probes[arm.name].shard(1, 1, warmup)
        for r in range(rounds):
            first = 1 + warmup + r * block
            for arm in arms if r % 2 == 0 else arms[::-1]:
                arm.rounds.append(probes[arm.name].shard(2 + r, first, block))
    finally:
        for probe in probes.values():
            probe.close()


def steady_summary(rounds: list[dict]) -> dict:
    """Pairs per CPU-second and per second, photo decodes, and per-stage CPU figures over ``rounds``."""
    scenes = sum(r["scenes"] for r in rounds)
    cpu = sum(r["cpu"] for r in rounds)
    wall = sum(r["wall"] for r in rounds)
    stages: dict[str, float] = {}
    for r in rounds:
        for k, v in r["stage_cpu"].items():
            if k in TIME_STAGES:
                stages[k] = stages.get(k, 0.0) + v
    return {
        "pairs": scenes,
        "pairs_per_cpu_second": round(scenes / cpu, 3),
        "cpu_ms_per_pair": round(1000 * cpu / scenes, 2),
        "pairs_per_second": round(scenes / wall, 3),
        "photo_decodes_per_pair": round(sum(r["imreads"] for r in rounds) / scenes, 3),
        "per_round_pairs_per_cpu_second": [round(r["scenes"] / r["cpu"], 3) for r in rounds],
        "stage_cpu_ms_per_pair": {k: round(1000 * v / scenes, 2) for k, v in stages.items()},
        "stage_pairs_per_cpu_second": {k: round(scenes / v, 2) for k, v in stages.items() if v > 0},
    }


def round_ratios(mine: list[dict], theirs: list[dict]) -> list[float]:
    """Per round: pairs per CPU-second of ``mine`` over ``theirs`` (the same scenes)."""
    return [(m["scenes"] / m["cpu"]) / (t["scenes"] / t["cpu"]) for m, t in zip(mine, theirs)]


def render_config(size: int, photo_dir: str | None, backend: str, overrides: list[str] = ()) -> dict:
    """The measured config: the defaults (every map, physics on, photo textures) at ``size``, then
    ``overrides`` (``key.sub=value``, values parsed as YAML) for both arms."""
    cfg: dict = {"scenes": 1_000_000, "size": size, "views": 2, "seed": 0, "backend": backend}
    cfg["physics"] = {"enabled": True}
    if photo_dir is not None:
        cfg["appearance"] = {"photo_dir": photo_dir}
    return with_overrides(cfg, overrides, "--set")


def with_overrides(cfg: dict, overrides: list[str], flag: str) -> dict:
    """A copy of ``cfg`` with ``overrides`` (``key.sub=value``, values parsed as YAML); ValueError
    naming ``flag`` for an item that is not ``key=value``."""
    import copy

    import yaml

    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag}: expected key=value, got {item!r}")
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return cfg


def default_photo_dir() -> str | None:
    from synthssl.render.config import AppearanceConfig

    return AppearanceConfig().photo_dir


def _load_average() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--scaling" in argv:  # its own flags (--size, --backend ...) go to scaling_main whole
        scaling_main([a for a in argv if a != "--scaling"])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", metavar="REV", default=None, help="also measure commit REV in the same run")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--backend", default="auto")
    p.add_argument("--warmup", type=int, default=48, help="scenes rendered before the steady state is measured")
    p.add_argument("--block", type=int, default=16, help="scenes per measured shard")
    p.add_argument("--rounds", type=int, default=5, help="measured shards per arm")
    p.add_argument("--startup-repeats", type=int, default=3)
    p.add_argument("--photo-multiple", type=int, default=4, help="the larger photo folder holds this many times more")
    p.add_argument("--photo-dir", default=None, help="default: the config's appearance.photo_dir")
    p.add_argument(
        "--lp-threads",
        default="tree",
        help="LP_NUM_THREADS of each worker; 'tree': what each tree's render gives one worker per CPU",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="render config override for both arms (repeatable), e.g. appearance.antialias=false",
    )
    p.add_argument(
        "--set-current",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="render config override for this checkout's arm only (repeatable): an option of this checkout "
        "measured against a release without it, e.g. physics.simulate=false",
    )
    p.add_argument("--scaling", action="store_true", help="run the 1-vs-N-workers benchmark instead (scaling_main)")
    args = p.parse_args(argv)
    photo_dir = args.photo_dir or default_photo_dir()
    load_before = _load_average()
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        os.environ["SYNTHSSL_CACHE_DIR"] = str(Path(tmp) / "cache")  # the probes build their caches here
        arms = [Arm("current", REPO, overrides=list(args.set_current))]
        commit = None
        if args.against:
            try:
                commit = extract_tree(args.against, Path(tmp) / "against")
            except ValueError as exc:
                print(f"bench_render: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
            arms.append(Arm(args.against, Path(tmp) / "against"))
        from synthssl.render import gl_compat

        # resolved once, as render_dataset does: spawned workers inherit PYOPENGL_PLATFORM
        os.environ["PYOPENGL_PLATFORM"] = gl_compat.use_backend(args.backend)
        try:
            cfg = render_config(args.size, photo_dir, args.backend, args.set)
            arms[0].config(cfg)
        except ValueError as exc:
            print(f"bench_render: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        cfgs = {"photos": cfg}
        photos = {}
        if photo_dir is not None:
            photos["photos"] = len(photo_files(Path(photo_dir)))
            if args.photo_multiple > 1:
                big = Path(tmp) / f"photos-{args.photo_multiple}"
                photos[f"photos_x{args.photo_multiple}"] = photo_folder_times(Path(photo_dir), big, args.photo_multiple)
                cfgs[f"photos_x{args.photo_multiple}"] = render_config(args.size, str(big), args.backend, args.set)
        measure_startup(arms, cfgs, args.startup_repeats, args.lp_threads)
        measure_steady(arms, cfg, args.warmup, args.block, args.rounds, args.lp_threads)
    report: dict = {
        "benchmark": "render worker: start-up, steady state, pairs per CPU-second per stage",
        "size": args.size,
        "views": 2,
        "physics_enabled": True,  # each tree places objects as its own defaults do
        "photo_dir": photo_dir,
        "photos": photos,
        "backend": os.environ["PYOPENGL_PLATFORM"],
        "lp_num_threads": args.lp_threads,
        "overrides": args.set,
        "overrides_current": args.set_current,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "warmup_pairs": args.warmup,
        "arms": {},
    }
    for arm in arms:
        report["arms"][arm.name] = {
            "code": "this checkout" if arm.code == REPO else f"commit {commit}",
            "startup_seconds": {
                k: {"median": round(statistics.median(v), 3), "runs": [round(x, 3) for x in v]}
                for k, v in arm.startup.items()
            },
            "prepare_seconds": arm.prepare,
            "steady": steady_summary(arm.rounds),
        }
    if len(arms) == 2:
        ratios = round_ratios(arms[0].rounds, arms[1].rounds)
        report["ratio"] = {
            "against": args.against,
            "steady_pairs_per_cpu_second": round(statistics.median(ratios), 3),
            "steady_pairs_per_cpu_second_per_round": [round(x, 3) for x in ratios],
            "startup_seconds": {
                k: round(statistics.median(arms[0].startup[k]) / statistics.median(arms[1].startup[k]), 3)
                for k in arms[0].startup
            },
        }
    print(json.dumps(report, indent=1))


# -- 1 vs N workers (--scaling) -------------------------------------------------------
def steady_rate(shards_done: list[tuple[float, int]], workers: int) -> float | None:
    """Scenes per second once every worker has started: the scenes of the shards finished after the
    first ``workers`` ones, over the time from the ``workers``-th to the last finish. ``shards_done``:
    (seconds since the start, scenes) per shard. None with too few shards."""
    done = sorted(shards_done)
    if len(done) <= workers or done[-1][0] <= done[workers - 1][0]:
        return None
    return sum(k for _, k in done[workers:]) / (done[-1][0] - done[workers - 1][0])


def run(out: str, scenes: int, size: int, backend: str, workers: int, compression: str, seed: int = 0) -> dict:
    """Render ``scenes`` with ``workers`` spawned workers; wall and CPU rates and per-stage costs."""
    from synthssl.render.config import config_from_dict
    from synthssl.render.pipeline import render_dataset

    cfg = config_from_dict(
        {
            "out": out,
            "scenes": scenes,
            "size": size,
            "views": 2,
            "seed": seed,
            "workers": workers,
            "shard_size": max(scenes // (SHARDS_PER_WORKER * workers), 1),
            "backend": backend,
            "compression": compression,
            "physics": {"enabled": True},
        }
    )
    t, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
    s = render_dataset(cfg, progress=False, in_process=False)
    wall = time.perf_counter() - t
    cpu = time.process_time() - c0 + _children_cpu() - k0  # all threads (llvmpipe's too) and reaped workers
    stages = s.to_dict()["stage_seconds_per_scene"]
    steady = steady_rate(s.shards_done, workers)
    worker_s = sum(stages.get(k, 0.0) for k in TIME_STAGES)
    return {
        "workers": workers,
        "scenes": scenes,
        "shard_size": cfg.shard_size,
        "seconds": round(wall, 3),
        "pairs_per_second": round(steady, 3) if steady is not None else None,
        "pairs_per_second_wall": round(scenes / wall, 3),
        "cpu_seconds": round(cpu, 3),
        "pairs_per_cpu_second": round(scenes / cpu, 3),
        "mean_overlap": s.to_dict()["mean_overlap"],
        "write_ms_per_scene": round(1000 * stages.get("write", 0.0), 2),
        "write_share_of_worker_time": round(stages.get("write", 0.0) / worker_s, 3) if worker_s else None,
        "stage_seconds_per_scene": stages,
    }


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def scaling_main(argv: list[str]) -> None:
    """``--scaling``: pairs/s with 1 and N workers in one run, scaling efficiency, writer cost.

    Renders at 128x128 with every map written and physics on. Both arms run through spawned
    worker processes (one worker, then N), each with the same number of scenes per worker and
    four shards per worker, so they pay the same start-up per worker and differ only in
    parallelism. Prints one JSON object:

    * ``pairs_per_second_1_worker``, ``pairs_per_second_n_workers`` and ``scaling_efficiency`` =
      pairs/s(N) / (N x pairs/s(1)) (target >= 0.85 with 2 workers on a 2-core machine), in the
      steady state: scenes of the shards finished after each worker's first one, over the time
      between the N-th and the last shard (a worker's start-up is left out); ``*_wall`` the same
      over the whole run, start-up included; ``pairs_per_cpu_second`` for each arm (CPU time of
      every thread and worker, start-up included);
    * ``write_ms_per_scene``: the writer's cost per scene (append = compression, file write,
      SHA-256, sidecar), measured inside the workers, and ``write_share_of_worker_time``;
    * the per-stage seconds per scene of each arm, the load average before and after.

    ``--quick``: 8 scenes per worker (about a minute on 2 cores), for a smoke run.
    """
    p = argparse.ArgumentParser(prog="bench_render.py --scaling", description=scaling_main.__doc__.splitlines()[0])
    p.add_argument("--scenes-per-worker", type=int, default=24)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="N (default: one per CPU core)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--backend", default="auto")
    p.add_argument("--compression", default="gzip", help="shard compression (default gzip = deflate + shuffle)")
    p.add_argument("--quick", action="store_true", help="8 scenes per worker")
    args = p.parse_args(argv)
    from synthssl.render.config import PhysicsConfig

    per_worker = max(8 if args.quick else args.scenes_per_worker, SHARDS_PER_WORKER)
    n = max(args.workers, 1)
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as tmp:
        one = run(os.path.join(tmp, "one"), per_worker, args.size, args.backend, 1, args.compression)
        many = run(os.path.join(tmp, "many"), per_worker * n, args.size, args.backend, n, args.compression)
    efficiency = many["pairs_per_second"] / (n * one["pairs_per_second"])
    efficiency_wall = many["pairs_per_second_wall"] / (n * one["pairs_per_second_wall"])
    write_ms = many["write_ms_per_scene"]
    print(
        json.dumps(
            {
                "benchmark": "render-scenes",
                "size": args.size,
                "views": 2,
                "placement": "pybullet settling" if PhysicsConfig().simulate else "resting (on stable hull faces)",
                "compression": args.compression,
                "backend": os.environ.get("PYOPENGL_PLATFORM", args.backend),
                "cpu_count": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "quick": args.quick,
                "load_average_before": load_before,
                "load_average_after": _load_average(),
                "workers": n,
                "pairs_per_second_1_worker": one["pairs_per_second"],
                "pairs_per_second_n_workers": many["pairs_per_second"],
                "scaling_efficiency": round(efficiency, 3),
                "target_scaling_efficiency": 0.85,
                "pairs_per_second_1_worker_wall": one["pairs_per_second_wall"],
                "pairs_per_second_n_workers_wall": many["pairs_per_second_wall"],
                "scaling_efficiency_wall": round(efficiency_wall, 3),
                "pairs_per_cpu_second_1_worker": one["pairs_per_cpu_second"],
                "pairs_per_cpu_second_n_workers": many["pairs_per_cpu_second"],
                "write_ms_per_scene": write_ms,
                "write_share_of_worker_time": many["write_share_of_worker_time"],
                "writer_limit_pairs_per_second_per_worker": round(1000 / write_ms, 1) if write_ms else None,
                "one_worker": one,
                "n_workers": many,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
