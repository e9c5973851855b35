#!/usr/bin/env bash
# One prepared GPU check for a lent GPU machine: in under 8 minutes on one H100, with a time limit
# per step and an overall deadline, it installs what travelled with the checkout, then measures EGL
# rendering at 128 px with 1 and N workers, the streaming source, the training/backbone ratio with
# bf16 autocast and channels_last, a torch.compile smoke and (with 2 GPUs) a 2-process NCCL run,
# and writes ONE JSON file ($OUT/gpu_check.json when $OUT is set). The steps: scripts/gpu_check.py.
#
#   bash scripts/gpu_check.sh --prepare          # here, once per change: fills .gpu-carry/, prints the call
#   bash scripts/gpu_check.sh [OUT.json]         # on the GPU machine (exit 2, one line, without CUDA)
#   bash scripts/gpu_check.sh --dry-run [OUT.json]   # any machine: every step on the CPU at tiny sizes
#   options: --deadline SECONDS (default 450), --steps render_scaling,train_ratio (setup always runs)
#
# Set-up decision (docs/install.md, "A lent GPU machine"): the GPU machine has no internet and a
# CPython 3.12 with CUDA torch 2.11, torchvision, numpy, scipy, h5py, OpenCV, timm, tensorboard
# (as its image is described); at most 64 MiB of checkout travels. The project's own torch
# pair (torch 2.14.1 + torchvision 0.29.1, a CUDA build of several GB) cannot travel, and is not
# needed: the machine's torch is used. What travels is .gpu-carry/ (git-ignored, about 33 MB):
# the rendering wheels for CPython 3.12 (trimesh, pyrender, PyOpenGL, freetype-py, setuptools),
# pybullet compiled here for CPython 3.12 (PyPI has no such wheel; module and random_urdfs meshes
# only, 5 MB), libglvnd's EGL/GL loader .debs, and the default photo folder's photos up to 4 MiB each.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The interpreter: $PYTHON, else the project's .venv (here), else python3 (the GPU machine's,
# which holds torch; .venv does not travel).
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="python3"; fi
fi
export PYTHONUNBUFFERED=1
exec "$PY" "$ROOT/scripts/gpu_check.py" "$@"
