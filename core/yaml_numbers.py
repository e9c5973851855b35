"""YAML reading where ``1e-3`` is a number.

PyYAML follows YAML 1.1, whose float pattern needs a dot: ``lr: 3e-4`` (or an
override ``optim.lr=1e-3``) would load as the *string* '3e-4' and then fail a type
check. `safe_load` is ``yaml.safe_load`` plus the YAML 1.2 scientific notation, used
for every config file and override of render and train alike.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class NumberLoader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3``, ``-2E5``, ``.5e1`` as floats."""


NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with scientific-notation floats (see the module docstring)."""
    return yaml.load(text, Loader=NumberLoader)


__all__ = ["NumberLoader", "safe_load"]
