"""Fixtures of the SLURM tests: a running one-node cluster (scripts/slurm/local-cluster.sh) and
a client for it, plus the tiny training data of the trainer tests.

`slurm` starts the cluster once per session when it is not running yet (and stops it at the end
only then); when it cannot start (not root and no password-less sudo, no apt-get, ...) every test
that uses it is skipped with one line saying why. Jobs are submitted with this Python's
environment (its bin/ first on PATH), as a user submits from an activated virtualenv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import pytest
from helpers.analytic_scene import write_shards
from helpers.photo_folder import write_photo_folder

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "slurm"
LOCAL_CLUSTER = SCRIPTS / "local-cluster.sh"
STATE_DIR = os.environ.get("SYNTHSSL_SLURM_DIR", "/tmp/synthssl-slurm")

#: Job states after which a job does not run again (REQUEUED and PENDING are not among them).
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}


class SlurmClient:
    """sbatch/srun/scontrol against the local cluster, with this Python's environment."""

    def __init__(self, conf: str):
        self.env = dict(os.environ)
        self.env["SLURM_CONF"] = conf
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.env.setdefault("OMP_NUM_THREADS", "1")
        self.env["SYNTHSSL_SLURM_DIR"] = STATE_DIR
        for key in [k for k in self.env if k.startswith(("SLURM_", "SBATCH_", "SRUN_"))]:
            if key != "SLURM_CONF":  # nothing of an enclosing job leaks into the submitted ones
                del self.env[key]

    def run(self, args: Sequence[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
        """Run a SLURM client command (or anything) with the cluster's environment; output captured."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)

    def sbatch(self, args: Sequence[str]) -> str:
        """Submit (``sbatch --parsable ARGS``); returns the job id."""
        done = self.run(["sbatch", "--parsable", *args])
        assert done.returncode == 0, f"sbatch {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout.strip().split(";")[0]

    def jobs(self, job_id: str) -> list[dict[str, str]]:
        """``scontrol show job -o JOB`` as one dict per job (one per task of an array); [] when unknown."""
        done = self.run(["scontrol", "show", "job", "-o", job_id])
        if done.returncode != 0:
            return []
        out = []
        for line in done.stdout.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if fields:
                out.append(fields)
        return out

    def wait(self, job_ids: Sequence[str], timeout: float = 300.0) -> dict[str, list[dict[str, str]]]:
        """Poll until every job (every task of an array) is in a final state; {job id: its jobs}.

        A job is read until it is final and then kept as last seen (the controller forgets ended
        jobs after MinJobAge). On timeout the jobs are cancelled and the test fails naming their states."""
        deadline = time.monotonic() + timeout
        final: dict[str, list[dict[str, str]]] = {}
        while True:
            for j in job_ids:
                jobs = [] if j in final else self.jobs(j)
                if jobs and all(job["JobState"] in FINAL_STATES for job in jobs):
                    final[j] = jobs
            if len(final) == len(job_ids):
                return final
            if time.monotonic() > deadline:
                self.run(["scancel", *job_ids])
                seen = {j: [job.get("JobState") for job in self.jobs(j)] for j in job_ids if j not in final}
                pytest.fail(f"SLURM jobs did not end within {timeout:.0f} s: {seen}")
            time.sleep(0.5)


def _start_command() -> list[str] | None:
    """How to run local-cluster.sh as root here: directly, through password-less sudo, or not at all."""
    if os.geteuid() == 0:
        return ["bash", str(LOCAL_CLUSTER)]
    try:
        if subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10).returncode == 0:
            return ["sudo", "-n", f"SYNTHSSL_SLURM_DIR={STATE_DIR}", "bash", str(LOCAL_CLUSTER)]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None


@pytest.fixture(scope="session")
def slurm() -> SlurmClient:
    """A client of the running local cluster (started here if needed, and then stopped at the end)."""
    command = _start_command()
    if command is None:
        pytest.skip("local SLURM cluster: needs root or password-less sudo to start (scripts/slurm/local-cluster.sh)")
    env = {**os.environ, "SYNTHSSL_SLURM_DIR": STATE_DIR}
    status = subprocess.run([*command, "status"], capture_output=True, text=True, env=env, timeout=60)
    started_here = status.returncode != 0
    if started_here:
        start = subprocess.run([*command, "start"], capture_output=True, text=True, env=env, timeout=900)
        if start.returncode != 0:
            lines = (start.stderr or start.stdout).strip().splitlines() or ["no output"]
            pytest.skip(f"local SLURM cluster did not start: {lines[-1]}")
    yield SlurmClient(f"{STATE_DIR}/slurm.conf")
    if started_here:
        subprocess.run([*command, "stop"], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory) -> Path:
    """24 analytic scenes (spheres on a floor), 48x48 px, 2 views, in 3 shards (as tests/train)."""
    d = tmp_path_factory.mktemp("shards")
    write_shards(d, num_scenes=24, shard_size=8, size=48)
    return d


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """8 random-texture photos (as tests/train, without the corrupt one)."""
    return write_photo_folder(tmp_path_factory.mktemp("photos"))
