#!/usr/bin/env bash
# Set up (idempotent) and run the test suite on CPU. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
# One OpenMP thread per process: the gloo tests run several processes at once.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec python -m pytest tests "$@"
