"""The cluster path of docs/cluster.md, run for real on a one-node SLURM (scripts/slurm/local-cluster.sh).

- An array render plus its dependent index job gives a folder that ``validate --deep`` accepts
  and whose scenes equal a single-process local render of the same seed.
- A failing array task (a bad key) keeps the dependent index job from running; its log says why
  in one line.
- A training job warned with USR1 checkpoints, requeues itself, resumes, and ends with the
  weights of an uninterrupted run.
- ``srun -n 2`` ranks find each other from SLURM's variables alone: their gradients equal one
  process's on the whole batch; train.sbatch trains on two ranks and eval.sbatch, submitted
  after it, evaluates the export.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ddp_gradients import gradients
from helpers.train_overrides import tiny_overrides

from synthssl.dataset.reader import ShardCollection
from synthssl.train.slurm_rendezvous import master_port

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "slurm"
RENDER = str(SCRIPTS / "render.sbatch")
TRAIN = str(SCRIPTS / "train.sbatch")
EVAL = str(SCRIPTS / "eval.sbatch")
#: Scene arrays compared bit for bit; rgb may differ in a pixel (Mesa llvmpipe, README).
EXACT_ARRAYS = ("depth", "instance", "normal", "contour", "category", "intrinsics", "cam_to_world", "scene_id")


def _scenes_by_id(directory) -> dict[int, dict]:
    coll = ShardCollection([str(directory)])
    return {int(coll[i]["scene_id"]): coll[i] for i in range(len(coll))}


def _lines(path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.gl
def test_array_render_and_index_job_equal_a_local_render(slurm, tmp_path):
    out, local = tmp_path / "shards", tmp_path / "local"
    args = [f"out={out}", "scenes=8", "size=32", "seed=5", "shard_size=2"]
    array = slurm.sbatch(["--array=0-3", f"--output={tmp_path}/render-%A_%a.out", RENDER, *args])
    index = slurm.sbatch(
        [
            f"--dependency=afterok:{array}",
            "--kill-on-invalid-dep=yes",
            f"--output={tmp_path}/index-%j.out",
            RENDER,
            "index",
            *args,
        ]
    )
    args[0] = f"out={local}"
    single = slurm.run(["render-scenes", *args, "--no-progress"], timeout=600)  # one process, meanwhile
    assert single.returncode == 0, single.stderr
    jobs = slurm.wait([array, index], timeout=600)

    assert sorted((j["ArrayTaskId"], j["JobState"], j["ExitCode"]) for j in jobs[array]) == [
        (str(i), "COMPLETED", "0:0") for i in range(4)
    ]
    assert (jobs[index][0]["JobState"], jobs[index][0]["ExitCode"]) == ("COMPLETED", "0:0")
    for task in range(4):  # each task: what it renders, then its plain progress lines, prefixed
        log = _lines(tmp_path / f"render-{array}_{task}.out")
        assert log[0] == (
            f"render.sbatch: task {task} of 4 (job {array}_{task}) renders shards k % 4 == {task} with 1 workers"
        )
        assert f"render-scenes [task {task}]: scene 2/2  (shard-0000{task}.h5 written)" in log[1]
        assert json.loads(log[-1])["scenes_rendered"] == 2
    indexed, validated = _lines(tmp_path / f"index-{index}.out")
    assert json.loads(indexed.removeprefix("render.sbatch: indexed: ")) == {
        "directory": str(out),
        "num_shards": 4,
        "num_scenes": 8,
        "category_tables": 1,
    }
    assert json.loads(validated) == {
        "valid": True,
        "directory": str(out),
        "num_shards": 4,
        "num_scenes": 8,
        "tmp_files": [],
    }
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["file"] for e in manifest["shards"]] == [f"shard-0000{k}.h5" for k in range(4)]

    cluster, alone = _scenes_by_id(out), _scenes_by_id(local)
    assert sorted(cluster) == sorted(alone) == list(range(8))
    for sid in range(8):
        for name in EXACT_ARRAYS:
            assert np.array_equal(np.asarray(cluster[sid][name]), np.asarray(alone[sid][name])), (sid, name)
        differing = np.any(cluster[sid]["rgb"] != alone[sid]["rgb"], axis=-1)  # [V, H, W]
        assert differing.sum(axis=(1, 2)).max() <= 1, (sid, "rgb", int(differing.sum()))


def test_a_failed_task_keeps_the_index_job_from_running(slurm, tmp_path):
    out = tmp_path / "shards"
    args = [f"out={out}", "scenez=8", "size=32"]
    array = slurm.sbatch(["--array=0-1", f"--output={tmp_path}/render-%A_%a.out", RENDER, *args])
    index = slurm.sbatch(
        [f"--dependency=afterok:{array}", "--kill-on-invalid-dep=yes", f"--output={tmp_path}/index.out"]
        + [RENDER, "index", *args]
    )
    jobs = slurm.wait([array, index], timeout=300)

    assert sorted((j["ArrayTaskId"], j["JobState"], j["ExitCode"]) for j in jobs[array]) == [
        ("0", "FAILED", "2:0"),
        ("1", "FAILED", "2:0"),
    ]
    assert (jobs[index][0]["JobState"], jobs[index][0]["Reason"]) == ("CANCELLED", "DependencyNeverSatisfied")
    assert not (tmp_path / "index.out").exists() and not (out / "manifest.json").exists()
    header, error = _lines(tmp_path / f"render-{array}_1.out")  # the task's log: what it runs, then one line
    assert header.startswith("render.sbatch: task 1 of 2")
    assert error.startswith("render-scenes [task 1]: scenez: unknown key; the keys of config are: out, scenes,")


def _train_args(shard_dir, photo_dir, out, **extra) -> list[str]:
    """The resume property's tiny run (tests/train/test_train_resume.py), 20 steps, a DataLoader worker."""
    settings = {
        "train.steps": 20,
        "data.workers": 1,
        "optim.warmup_steps": 2,
        "optim.grad_clip": 1.0,
        "method.synthetic.adversarial": "gan",
        "augment.blur_p": 0.5,
    }
    return tiny_overrides(shard_dir, photo_dir, out, **{**settings, **extra})


def test_a_warned_training_job_requeues_and_resumes_to_the_uninterrupted_weights(slurm, shard_dir, photo_dir, tmp_path):
    warned_log, plain_log = tmp_path / "warned.out", tmp_path / "plain.out"
    warned = slurm.sbatch([f"--output={warned_log}", TRAIN, *_train_args(shard_dir, photo_dir, tmp_path / "warned")])
    plain = slurm.sbatch([f"--output={plain_log}", TRAIN, *_train_args(shard_dir, photo_dir, tmp_path / "plain")])
    metrics = tmp_path / "warned" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().strip()):  # a step is done: the warning comes mid-run
        assert time.monotonic() < deadline, f"no training step within 300 s: {warned_log.read_text()}"
        time.sleep(0.1)
    signal = slurm.run(["scancel", "--signal=USR1", "--batch", warned])  # as --signal=B:USR1@120 sends it
    assert signal.returncode == 0, signal.stderr
    jobs = slurm.wait([warned, plain], timeout=600)

    assert (jobs[warned][0]["JobState"], jobs[warned][0]["Restarts"]) == ("COMPLETED", "1")
    assert (jobs[plain][0]["JobState"], jobs[plain][0]["Restarts"]) == ("COMPLETED", "0")
    log = warned_log.read_text()  # appended across the requeue
    stopped = re.search(r"^train-ssl: SIGUSR1 at step (\d+): checkpoint written", log, re.M)
    assert stopped and 1 <= int(stopped.group(1)) < 20, log
    for line in (
        f"train.sbatch: job {warned} starts the run in {tmp_path / 'warned'} on 1 rank(s)",
        f"train.sbatch: requeueing job {warned} (restart 1); it resumes from {tmp_path / 'warned'}/checkpoint.pt",
        f"train.sbatch: job {warned} (restart 1) resumes the run in {tmp_path / 'warned'} on 1 rank(s)",
        f"train-ssl: done; run in {tmp_path / 'warned'}",
    ):
        assert line in log.splitlines(), (line, log)
    assert "Traceback" not in log and "killed by signal" not in log

    resumed = torch.load(tmp_path / "warned" / "checkpoint.pt", weights_only=True)
    full = torch.load(tmp_path / "plain" / "checkpoint.pt", weights_only=True)
    assert resumed["step"] == full["step"] == 20
    for name, value in full["method"].items():
        torch.testing.assert_close(resumed["method"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    opt_full, opt_res = full["optimizers"]["discriminator"]["state"], resumed["optimizers"]["discriminator"]["state"]
    for k in opt_full:
        torch.testing.assert_close(opt_res[k]["exp_avg"], opt_full[k]["exp_avg"], rtol=1e-5, atol=1e-7)
    steps = [json.loads(x)["step"] for x in (tmp_path / "warned" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 21))  # one run's metrics: every step once


@pytest.mark.ddp
def test_srun_ranks_meet_through_slurm_variables_and_equal_one_process(slurm, shard_dir, photo_dir, tmp_path):
    worker = Path(__file__).with_name("ddp_gradients.py")
    done = slurm.run(
        ["srun", "-n", "2", "--cpus-per-task=1", "env", f"PYTHONPATH={worker.parents[1]}", "python", str(worker)]
        + [str(shard_dir), str(photo_dir), str(tmp_path)],
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = torch.load(tmp_path / "ddp.pt")
    rendezvous = ddp["rendezvous"]  # what rank 0 read: nothing but SLURM's variables was given
    assert (rendezvous["RANK"], rendezvous["WORLD_SIZE"], rendezvous["LOCAL_RANK"]) == ("0", "2", "0")
    assert rendezvous["MASTER_ADDR"] == socket.gethostname().split(".")[0]
    assert rendezvous["MASTER_PORT"] == str(master_port(int(rendezvous["SLURM_JOB_ID"])))

    terms, grads = gradients(str(shard_dir), str(photo_dir), str(tmp_path / "single"))
    for key in ("loss", "contrast", "depth", "normal", "contour", "adv", "disc_loss"):
        assert abs(ddp["terms"][key] - terms[key]) <= 1e-4 * max(1.0, abs(terms[key])), key
    assert set(ddp["grads"]) == set(grads)
    for name, g in grads.items():  # as tests/train/test_train_ddp.py: float32 sums in another order
        err = float((ddp["grads"][name] - g).norm())
        assert err <= 1e-3 * float(g.norm()) + 1e-7, f"{name}: |srun - single| = {err:.3g}"


@pytest.mark.ddp
def test_train_sbatch_trains_on_two_ranks_and_eval_sbatch_follows(slurm, shard_dir, photo_dir, tmp_path):
    log, eval_log, report = tmp_path / "train.out", tmp_path / "eval.out", tmp_path / "report"
    args = _train_args(shard_dir, photo_dir, tmp_path / "run", **{"train.steps": 2, "data.workers": 0})
    job = slurm.sbatch(["--ntasks=2", f"--output={log}", TRAIN, *args])
    quick = ["eval_quick", f"backbone={tmp_path / 'run' / 'export'}", "benchmarks=[]", f"shards=[{shard_dir}]"]
    quick += ["dense.train_scenes=8", "dense.test_scenes=4", "dense.steps=5", "random=false", f"out={report}"]
    evaluation = slurm.sbatch(
        [f"--dependency=afterok:{job}", "--kill-on-invalid-dep=yes", f"--output={eval_log}", EVAL, *quick]
    )
    jobs = slurm.wait([job, evaluation], timeout=600)

    assert (jobs[job][0]["JobState"], jobs[job][0]["ExitCode"]) == ("COMPLETED", "0:0"), log.read_text()
    lines = log.read_text().splitlines()
    assert lines[0] == f"train.sbatch: job {job} starts the run in {tmp_path / 'run'} on 2 rank(s)"
    assert lines[-1] == f"train-ssl: done; run in {tmp_path / 'run'}"
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert (checkpoint["step"], checkpoint["world_size"]) == (2, 2)

    assert (jobs[evaluation][0]["JobState"], jobs[evaluation][0]["ExitCode"]) == ("COMPLETED", "0:0"), (
        eval_log.read_text()
    )
    assert eval_log.read_text().splitlines()[0] == f"eval.sbatch: job {evaluation} evaluates with 1 CPU(s)"
    results = json.loads((report / "results.json").read_text())
    assert list(results["backbones"]) == ["pretrained"]
    assert set(results["dense"]["metrics"]["pretrained"]) == {"depth", "normal", "contour", "segmentation"}


def test_local_cluster_status_names_the_three_daemons(slurm):
    status = slurm.run(["bash", str(SCRIPTS / "local-cluster.sh"), "status"])
    assert status.returncode == 0, status.stdout + status.stderr
    names = [line.split()[1] for line in status.stdout.splitlines()[:3]]
    assert names == ["munged", "slurmctld", "slurmd"]
    assert "running (pid" in status.stdout and f"export SLURM_CONF={slurm.env['SLURM_CONF']}" in status.stdout
