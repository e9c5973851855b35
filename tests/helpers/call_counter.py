"""Counting the calls of a module's function in a test (through pytest's monkeypatch)."""

from __future__ import annotations

from typing import Any

import pytest


class CallCounter:
    """Replaces ``module.name`` with a wrapper that counts its calls (``calls``) and calls the original."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str):
        self.calls = 0
        real = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
