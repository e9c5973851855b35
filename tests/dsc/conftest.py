"""DSC test setup: raycast.py (exact view pairs) importable; one torch thread per test.

Shards come from the shared ``analytic_shards`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
