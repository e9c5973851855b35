#!/usr/bin/env bash
# Set up (idempotent) and run the test suite on CPU. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
# One OpenMP thread per process: the gloo tests run several processes at once.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# Lint and format check first: a style error fails in seconds, before the long suite.
ruff check --quiet .
ruff format --check --quiet .
exec python -m pytest tests "$@"
