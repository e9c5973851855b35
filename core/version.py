"""The installed synthssl version (written into every shard)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def package_version() -> str:
    """Version string of the installed ``synthssl`` distribution, or '0+unknown' from a bare checkout."""
    try:
        from importlib.metadata import version

        return version("synthssl")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"
