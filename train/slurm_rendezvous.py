"""The rendezvous of ``srun``-launched training ranks, read from SLURM's environment.

``srun -n N train-ssl ...`` (scripts/slurm/train.sbatch) starts N processes that torchrun
did not start, so ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` ... are unset. SLURM sets, in
every task of a job step (and not in the batch script itself, which has no
``SLURM_STEP_ID``):

- ``SLURM_PROCID``: the task's rank in the step, 0..N-1 -> ``RANK``;
- ``SLURM_STEP_NUM_TASKS`` (``SLURM_NTASKS`` where absent): N -> ``WORLD_SIZE``;
- ``SLURM_LOCALID``: the task's rank on its node -> ``LOCAL_RANK`` (its GPU);
- ``SLURM_STEP_NODELIST`` (``SLURM_JOB_NODELIST``): the nodes in SLURM's compressed form
  (``gpu[01-04,07],cpu3``); rank 0 runs on the first -> ``MASTER_ADDR``;
- ``SLURM_JOB_ID`` -> ``MASTER_PORT`` = 10000 + job id mod 20000 (`master_port`): two jobs that
  share a node listen on different ports, below Linux's ephemeral range (32768 up).

`rendezvous_env` turns these into torchrun's variables (``init_process_group``'s env://
rendezvous reads them). torchrun's own variables win (``WORLD_SIZE`` set: torchrun under srun),
and a ``MASTER_ADDR``/``MASTER_PORT`` exported by the user is kept. No torch here.
"""

from __future__ import annotations

import itertools
from typing import Mapping

#: The first port `master_port` hands out, and how many it cycles through.
PORT_BASE, PORT_SPAN = 10000, 20000


def _split_top_level(text: str) -> list[str]:
    """``'a[1,2],b'`` -> ``['a[1,2]', 'b']``: split on the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p]


def _expand_range(spec: str) -> list[str]:
    """``'01-03,7'`` -> ``['01', '02', '03', '7']`` (the width of a range's lower bound is kept)."""
    out: list[str] = []
    for item in spec.split(","):
        low, sep, high = item.partition("-")
        if not sep:
            out.append(low)
            continue
        if not (low.isdigit() and high.isdigit()) or int(high) < int(low):
            raise ValueError(f"SLURM node list: {item!r} is not a range like 01-04")
        out += [str(k).zfill(len(low)) for k in range(int(low), int(high) + 1)]
    return out


def expand_nodelist(nodelist: str) -> list[str]:
    """Host names of a SLURM node list, in order, as ``scontrol show hostnames`` prints them.

    ``'gpu[01-02,07],cpu3'`` -> ``['gpu01', 'gpu02', 'gpu07', 'cpu3']``; several bracket groups in
    one name expand as their product (``'r[1-2]n[1-2]'`` -> r1n1, r1n2, r2n1, r2n2). ValueError on an
    unbalanced bracket or a malformed range.
    """
    hosts: list[str] = []
    for name in _split_top_level(nodelist.strip()):
        pieces: list[list[str]] = []
        rest = name
        while "[" in rest:
            head, _, tail = rest.partition("[")
            spec, close, rest = tail.partition("]")
            if not close:
                raise ValueError(f"SLURM node list: unbalanced '[' in {name!r}")
            pieces += [[head], _expand_range(spec)]
        if "]" in rest:
            raise ValueError(f"SLURM node list: unbalanced ']' in {name!r}")
        pieces.append([rest])
        hosts += ["".join(combo) for combo in itertools.product(*pieces)]
    return hosts


def master_port(job_id: int) -> int:
    """The rendezvous port of job ``job_id``: 10000 + job id mod 20000 (10000..29999)."""
    return PORT_BASE + job_id % PORT_SPAN


def rendezvous_env(environ: Mapping[str, str]) -> dict[str, str]:
    """torchrun's variables for an srun task of a step of several tasks; {} otherwise.

    Returns ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` (strings)
    when ``environ`` is that of a task started by ``srun`` (``SLURM_STEP_ID`` and ``SLURM_PROCID``
    set) in a step of more than one task, and torchrun's ``WORLD_SIZE`` is not set. The
    ``MASTER_ADDR``/``MASTER_PORT`` already in ``environ`` are kept.
    """
    if "WORLD_SIZE" in environ or "SLURM_STEP_ID" not in environ or "SLURM_PROCID" not in environ:
        return {}
    world = int(environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS") or "1")
    if world <= 1:
        return {}
    nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or ""
    hosts = expand_nodelist(nodelist)
    if not hosts:
        raise ValueError("SLURM_STEP_NODELIST and SLURM_JOB_NODELIST are empty: no host for rank 0")
    return {
        "RANK": environ["SLURM_PROCID"],
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": environ.get("SLURM_LOCALID", "0"),
        "MASTER_ADDR": environ.get("MASTER_ADDR") or hosts[0],
        "MASTER_PORT": environ.get("MASTER_PORT") or str(master_port(int(environ.get("SLURM_JOB_ID", "0")))),
    }


__all__ = ["expand_nodelist", "master_port", "rendezvous_env"]
