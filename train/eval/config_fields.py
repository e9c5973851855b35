"""Strict construction of (nested) frozen dataclasses from YAML mappings.

``build_dataclass(cls, data, where)`` checks every key against the dataclass fields
and every value against its annotation (bool, int, float, str, None-able, tuple[X, ...],
nested dataclasses), raising ValueError naming ``where.key`` and what was expected.
Ints are accepted for float fields; lists for tuple fields.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, TypeVar

__all__ = ["build_dataclass", "to_plain"]

T = TypeVar("T")


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if len(errors) == 1 else f"{where}: {value!r} does not match {annotation}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, where)
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"{where}: unsupported annotation {annotation!r}")
    raise ValueError(f"{where}: expected {annotation.__name__}, got {value!r}")


def build_dataclass(cls: type[T], data: Mapping[str, Any] | T | None, where: str) -> T:
    """An instance of dataclass ``cls`` from a mapping (missing keys keep their defaults)."""
    if data is None:
        return cls()
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    return cls(**{k: _convert(v, hints[k], f"{where}.{k}") for k, v in data.items()})


def to_plain(obj: Any) -> Any:
    """Dataclasses/tuples -> dicts/lists (for JSON reports)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj
