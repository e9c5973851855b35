"""What the Python API accepts as a configuration, turned into one plain tree for `synthssl.core.config`.

``synthssl.render.render_scene``, ``render_dataset`` and ``synthssl.train.train`` take a config
in any of these forms, plus overrides:

- a config dataclass (``RenderConfig``, ``TrainingConfig``): its values;
- a ``dict``: a nested mapping, as a YAML file would hold it (partial: the rest keeps the defaults);
- a ``str`` or ``Path``: a YAML file, or a shipped config named without a path (``"demo"``);
- ``None``: the defaults.

Overrides come after it, in this order: a list of ``"dotted.key=value"`` strings (values
parsed as YAML, as on the command line) or a ``{dotted key: value}`` mapping, then keyword
arguments, where a double underscore stands for the dot (``camera__overlap=[0.4, 0.8]`` is
``camera.overlap``). Mapping and keyword values are Python values, used as they are; a dict
value merges into the section it names (``data={"shards": ["a"]}`` keeps the other data keys).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from synthssl.core.config import ConfigError, apply_override, load_yaml, merge, to_dict

Overrides = Union[Sequence[str], Mapping[str, Any], None]

__all__ = ["Overrides", "config_tree", "set_dotted"]


def set_dotted(tree: dict, key: str, value: Any) -> None:
    """Set ``tree[a][b][c] = value`` for ``key = "a.b.c"``, creating sections; a dict value is merged key by
    key into a section already there. ConfigError when a prefix of the key is a value, not a section."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{key!r}: empty key segment")
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    value = str(value) if isinstance(value, Path) else to_dict(value)
    old = node.get(parts[-1])
    node[parts[-1]] = merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value


def config_tree(
    config: Any,
    shipped: Optional[Path],
    overrides: Overrides = None,
    keywords: Optional[Mapping[str, Any]] = None,
) -> tuple[dict, Optional[str]]:
    """(nested plain dict, the config file's name or None) for ``config`` with ``overrides`` and ``keywords``.

    ``shipped``: the folder of the configs shipped with the package (names without a path).
    Errors are `ConfigError` naming the key or file.
    """
    source: Optional[str] = None
    if config is None:
        tree: dict = {}
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        tree = to_dict(config)
    elif isinstance(config, Mapping):
        tree = to_dict(dict(config))
    elif isinstance(config, (str, Path)):
        source = str(config)
        tree = load_yaml(config, shipped)
    else:
        raise ConfigError(
            f"config: expected a config dataclass, a dict, a YAML file or a shipped config name, "
            f"got {type(config).__name__}"
        )
    if isinstance(overrides, str):
        raise ConfigError(f"overrides: expected a list of 'key=value' strings, got the string {overrides!r}")
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            set_dotted(tree, str(key), value)
    else:
        for item in overrides or ():
            apply_override(tree, str(item))
    for name, value in (keywords or {}).items():
        set_dotted(tree, name.replace("__", "."), value)
    return tree, source
