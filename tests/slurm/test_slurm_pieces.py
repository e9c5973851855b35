"""The SLURM path's pieces that need no cluster: the srun rendezvous from SLURM's variables, the
array index in log lines, DataLoader workers living through SLURM's signals, and the local
cluster script's refusals."""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from synthssl.core.console import array_task_label, setup_logging
from synthssl.train.slurm_rendezvous import expand_nodelist, master_port, rendezvous_env

LOCAL_CLUSTER = Path(__file__).resolve().parents[2] / "scripts" / "slurm" / "local-cluster.sh"

#: What srun sets in task 1 of a two-task step on nodes gpu07 and gpu08 of job 123456.
SRUN_TASK = {
    "SLURM_JOB_ID": "123456",
    "SLURM_STEP_ID": "0",
    "SLURM_PROCID": "1",
    "SLURM_LOCALID": "0",
    "SLURM_NTASKS": "2",
    "SLURM_STEP_NUM_TASKS": "2",
    "SLURM_STEP_NODELIST": "gpu[07-08]",
    "SLURM_JOB_NODELIST": "gpu[07-08]",
}


@pytest.mark.parametrize(
    "nodelist, hosts",
    [
        ("vm", ["vm"]),
        ("gpu[01-03,07]", ["gpu01", "gpu02", "gpu03", "gpu07"]),
        ("gpu[09-11],cpu3", ["gpu09", "gpu10", "gpu11", "cpu3"]),
        ("r[1-2]n[8-9]-ib", ["r1n8-ib", "r1n9-ib", "r2n8-ib", "r2n9-ib"]),
        ("node[098-100]", ["node098", "node099", "node100"]),
    ],
)
def test_node_lists_expand_as_scontrol_show_hostnames(nodelist, hosts):
    assert expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize("nodelist", ["gpu[01-03", "gpu01]", "gpu[03-01]", "gpu[a-b]"])
def test_malformed_node_lists_are_refused(nodelist):
    with pytest.raises(ValueError, match="SLURM node list"):
        expand_nodelist(nodelist)


def test_an_srun_task_gets_torchruns_variables():
    assert rendezvous_env(SRUN_TASK) == {
        "RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "gpu07",
        "MASTER_PORT": str(10000 + 123456 % 20000),
    }
    assert master_port(123456) == 13456 and master_port(19999) == 29999 and master_port(20000) == 10000
    # a step of 2 tasks inside a job of 4: the step's count and nodes count
    inner = {**SRUN_TASK, "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "gpu[05-08]"}
    assert rendezvous_env(inner)["WORLD_SIZE"] == "2" and rendezvous_env(inner)["MASTER_ADDR"] == "gpu07"
    # without the step's variables (older SLURM), the job's
    older = {k: v for k, v in SRUN_TASK.items() if k not in ("SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST")}
    assert rendezvous_env(older)["WORLD_SIZE"] == "2" and rendezvous_env(older)["MASTER_ADDR"] == "gpu07"
    # a rendezvous exported by the user is kept
    chosen = rendezvous_env({**SRUN_TASK, "MASTER_ADDR": "10.0.0.7", "MASTER_PORT": "29500"})
    assert (chosen["MASTER_ADDR"], chosen["MASTER_PORT"]) == ("10.0.0.7", "29500")


def test_no_rendezvous_outside_an_srun_step_of_several_tasks():
    batch_script = {k: v for k, v in SRUN_TASK.items() if k not in ("SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS")}
    assert rendezvous_env(batch_script) == {}  # the batch script itself has SLURM_NTASKS=2 but is one process
    assert rendezvous_env({**SRUN_TASK, "SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "1"}) == {}
    assert rendezvous_env({**SRUN_TASK, "WORLD_SIZE": "8", "RANK": "3"}) == {}  # torchrun under srun
    assert rendezvous_env({}) == {}


def test_array_tasks_say_their_index_in_log_lines(monkeypatch):
    assert array_task_label({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}) == "task 3"
    assert array_task_label({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "1"}) == ""
    assert array_task_label({"SLURM_JOB_ID": "7"}) == ""
    stream = io.StringIO()
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    setup_logging("render-scenes", stream=stream)
    logging.getLogger("synthssl.render").info("scene %d/%d", 2, 8)
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    setup_logging("render-scenes", stream=stream)
    logging.getLogger("synthssl.render").info("scene %d/%d", 8, 8)
    assert stream.getvalue().splitlines() == ["render-scenes [task 3]: scene 2/8", "render-scenes: scene 8/8"]


class _Numbers:
    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> dict:
        time.sleep(0.01)
        return {"i": i}


def test_training_loader_workers_live_through_slurms_signals():
    """SLURM signals every process of a step; the trainer's DataLoader workers must outlive
    SIGUSR1/SIGTERM so that the main process reaches its checkpoint."""
    from synthssl.train.data.pipeline import _loader

    before = set(multiprocessing.active_children())
    batches = _loader(_Numbers(), 4, list(range(64)), workers=1, prefetch=2, pin=False)
    assert next(batches)["i"].tolist() == [0, 1, 2, 3]
    (worker,) = set(multiprocessing.active_children()) - before
    for sig in (signal.SIGUSR1, signal.SIGTERM):
        os.kill(worker.pid, sig)
    time.sleep(0.5)
    assert worker.is_alive()
    assert [next(batches)["i"].tolist()[0] for _ in range(3)] == [4, 8, 12]


def _run_unprivileged(*args: str) -> subprocess.CompletedProcess:
    command = ["bash", str(LOCAL_CLUSTER), *args]
    if os.geteuid() == 0:  # as nobody: what a user without root sees
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None, reason="needs setpriv to drop root")
def test_local_cluster_refuses_politely():
    for args in (("start",), ("stop",)):
        done = _run_unprivileged(*args)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == (
            f"local-cluster.sh: needs root (apt-get, and slurmd runs jobs as their users); "
            f"run: sudo bash {LOCAL_CLUSTER} {args[0]}\n"
        )
    done = _run_unprivileged("restart")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"local-cluster.sh: usage: {LOCAL_CLUSTER} start|stop|status")
