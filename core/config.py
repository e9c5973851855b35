"""The one configuration engine of synthssl: typed dataclasses <- YAML files + ``key=value`` overrides.

Torch-free (``render/`` and ``train/`` both use it). A configuration is a tree of
dataclasses, one per section. The engine:

- reads YAML files that may include a base file (``base: other.yaml``, relative to the
  including file or a shipped config name), merged key by key (`merge`);
- applies ``dotted.key=value`` overrides, values parsed as YAML (`apply_override`);
- builds the dataclass tree (`build`): unknown keys and wrong types are `ConfigError`
  naming the full dotted key; a section that is not given keeps its defaults, a
  partial one is merged over them; then every section's own ``check()`` runs (see
  `need`), and its errors are reported under the section's dotted prefix;
- lists every key with type, default and help (`help_lines`), from field metadata
  (`opt`) or the attribute docstring under the field; prints the merged result
  (`to_dict`, `to_yaml`).

A field may hold one of several dataclasses chosen by a ``name`` key (`variant`), e.g.
``method: {name: dsc, ...}``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import sys
import textwrap
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Callable, Literal, NoReturn, Optional, Sequence, Union

import yaml

from synthssl.core.yaml_numbers import safe_load

__all__ = [
    "flag_error",
    "KeyValueParser",
    "ConfigError",
    "opt",
    "variant",
    "need",
    "build",
    "check_tree",
    "to_dict",
    "to_yaml",
    "merge",
    "apply_override",
    "load_yaml",
    "find_config",
    "help_lines",
    "field_help",
    "split_arguments",
    "type_name",
]


class ConfigError(ValueError):
    """A bad configuration value, key or file: the message names the dotted key (or file) and what was expected."""


def opt(default: Any, help: str) -> Any:
    """A dataclass field with a default and a one-line help (shown by ``--help``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def variant(
    default: Callable[[], Any], choose: Callable[[str], type], choices: Callable[[], Sequence[str]], help: str
) -> Any:
    """A field holding one of several dataclasses, picked by the mapping's ``name`` key.

    choose(name) -> the dataclass for that name (ValueError naming the choices); every
    such dataclass has a ``name: str`` field. choices() lists the names (for ``--help``).
    """
    return field(default_factory=default, metadata={"help": help, "choose": choose, "choices": choices})


def need(condition: bool, key: str, expected: str) -> None:
    """In a section's ``check()``: raise ConfigError ``key: expected <expected>`` unless ``condition``.

    key is relative to the section (``"count"``, ``"size[1]"``, ``"a/b"`` for a relation);
    the engine prefixes the section's dotted path.
    """
    if not condition:
        raise _SectionError(key, expected)


class _SectionError(ConfigError):
    def __init__(self, key: str, expected: str):
        super().__init__(f"{key}: expected {expected}")
        self.key, self.expected = key, expected


# --------------------------------------------------------------------------- building


def type_name(tp: Any) -> str:
    """A short readable name of a type annotation (``int``, ``list[float]``, ``'a' | 'b'``)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return f"{origin.__name__}[{', '.join(type_name(a) for a in typing.get_args(tp))}]"
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, meta: Optional[dict] = None) -> Any:
    """``value`` as the annotated type ``tp`` (int -> float allowed), or ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    if meta and "choose" in meta:
        return _build_variant(value, meta["choose"], key, meta.get("default_name"))
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: expected one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}: expected null, got {value!r}")
        return None
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list ({type_name(tp)}), got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
            return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        out = [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        args = typing.get_args(tp)
        inner = args[1] if len(args) == 2 else Any
        return {str(k): _convert(v, inner, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {type_name(tp)}")  # pragma: no cover - a programming error


def _build(cls: type, data: Any, key: str) -> Any:
    """Dataclass ``cls`` from a (partial) mapping; fields not given keep their defaults."""
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    where = key or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {data!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for k in data:
        if k not in fields:
            raise ConfigError(
                f"{key + '.' if key else ''}{k}: unknown key; the keys of {where} are: {', '.join(fields)}"
            )
    kwargs = {}
    for k, v in data.items():
        sub = f"{key + '.' if key else ''}{k}"
        kwargs[k] = _convert(_over_default(fields[k], v, sub), hints[k], sub, _field_meta(fields[k]))
    return cls(**kwargs)


def _over_default(f: dataclasses.Field, value: Any, key: str) -> Any:
    """A partial section merged over the field's own default section (which may differ from its class's
    defaults, e.g. a method that turns a shared term off by default); other values as given."""
    if not isinstance(value, dict):
        return value
    default = _default(f)
    if not dataclasses.is_dataclass(default) or isinstance(default, type):
        return value
    if "choose" in f.metadata and value.get("name", default.name) != default.name:
        return value  # another choice: its own class defaults
    return _section_over(default, value, key)


def _section_over(default: Any, value: dict, key: str) -> dict:
    """``value`` over the section ``default``: keys not given keep the default's values; a given nested
    section is merged the same way; any other given value (a list, a mapping-valued option) replaces."""
    out = {f.name: to_dict(getattr(default, f.name)) for f in dataclasses.fields(default) if f.init}
    for k, v in value.items():
        inner = getattr(default, k, None)
        nested = dataclasses.is_dataclass(inner) and not isinstance(inner, type) and isinstance(v, dict)
        same = nested and (not hasattr(inner, "name") or v.get("name", inner.name) == inner.name)
        sub = f"{key}.{k}" if key else k
        out[k] = _section_over(inner, v, sub) if same else v
    return out


def _build_variant(value: Any, choose: Callable[[str], type], key: str, default_name: Optional[str]) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value
    if isinstance(value, dict) and "name" not in value and default_name is not None:
        value = {"name": default_name, **value}  # options of the default choice
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ConfigError(f"{key}.name: missing; expected a mapping with a name (e.g. {key}.name=...)")
    try:
        cls = choose(value["name"])
    except ValueError as exc:
        raise ConfigError(f"{key}.name: {exc}") from None
    return _build(cls, value, key)


def _field_meta(f: dataclasses.Field) -> dict:
    meta = dict(f.metadata)
    if "choose" in meta:
        meta["default_name"] = getattr(_default(f), "name", None)
    return meta


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_tree(obj: Any, key: str = "") -> Any:
    """Run ``check()`` of every section of a built tree, children first; errors get the dotted prefix."""
    for f in dataclasses.fields(obj):
        child = getattr(obj, f.name)
        if dataclasses.is_dataclass(child) and not isinstance(child, type):
            check_tree(child, f"{key + '.' if key else ''}{f.name}")
    check = getattr(obj, "check", None)
    if callable(check):
        try:
            check()
        except _SectionError as exc:
            raise ConfigError(f"{key + '.' if key else ''}{exc.key}: expected {exc.expected}") from None
    return obj


def build(cls: type, data: Any, key: str = "") -> Any:
    """The checked dataclass tree ``cls`` from a nested mapping (see the module docstring)."""
    return check_tree(_build(cls, data, key), key)


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain dicts/lists (tuples become lists), for saving and printing."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def to_yaml(obj: Any) -> str:
    """YAML text of a dataclass tree (or plain tree), keys in declaration order."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


# --------------------------------------------------------------------------- files and overrides


def merge(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base`` key by key: nested mappings recursively, otherwise ``over`` wins."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def find_config(spec: str | Path, shipped: Optional[Path] = None) -> Path:
    """The YAML file ``spec`` names: a path, else a config shipped in the folder ``shipped``.

    ``simclr``, ``simclr.yaml`` and ``configs/simclr.yaml`` (or ``train/configs/simclr.yaml``)
    all name ``<shipped>/simclr.yaml`` when no such file exists from the current folder.
    """
    path = Path(spec)
    if path.is_file():
        return path
    if shipped is not None and (len(path.parts) == 1 or path.parent.name == "configs"):
        name = path.name if path.suffix in (".yaml", ".yml") else path.name + ".yaml"
        candidate = shipped / name
        if candidate.is_file():
            return candidate
    known = f"; shipped configs: {', '.join(sorted(p.stem for p in shipped.glob('*.yaml')))}" if shipped else ""
    raise ConfigError(f"{spec}: config file not found{known}")


def load_yaml(path: str | Path, shipped: Optional[Path] = None, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML mapping with its ``base:`` file(s) merged under it (the including file wins).

    ``base`` is a file name relative to the including file, or a shipped config name;
    it may be a list (merged in order). Include cycles are errors.
    """
    path = find_config(path, shipped)
    real = path.resolve()
    if real in _seen:
        raise ConfigError(f"{path}: base: includes itself ({' -> '.join(p.name for p in (*_seen, real))})")
    try:
        tree = safe_load(path.read_text()) or {}  # 3e-4 is a number
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({one_line_yaml_error(exc)})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    bases = tree.pop("base", None)
    if bases is None:
        return tree
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: base: expected a file name or a list of them, got {bases!r}")
    merged: dict = {}
    for b in bases:
        local = path.parent / b
        try:
            base_tree = load_yaml(local if local.is_file() else b, shipped, (*_seen, real))
        except ConfigError as exc:
            raise ConfigError(f"{path}: base: {exc}") from None
        merged = merge(merged, base_tree)
    return merge(merged, tree)


def one_line_yaml_error(exc: yaml.YAMLError) -> str:
    """A YAML parse error on one line (``problem at line L, column C``)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def apply_override(tree: dict, item: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as YAML) to a nested mapping, in place."""
    if "=" not in item:
        raise ConfigError(f"{item!r}: expected dotted.key=value (e.g. optim.lr=0.1)")
    key, raw = item.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{item!r}: empty key segment in {key!r}")
    try:
        value = safe_load(raw) if raw.strip() != "" else ""  # 1e-6 is a number
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key}: cannot parse {raw!r} as YAML ({one_line_yaml_error(exc)})") from None
    node = tree
    for i, p in enumerate(parts[:-1]):
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def flag_error(words: Sequence[str], command: str) -> Optional[str]:
    """The one-line error for the first ``-flag`` in ``words`` of a ``key=value`` command (``-h`` and
    ``--help`` excepted), naming the key to use instead; None when there is none."""
    flag = next((w for w in words if w.startswith("-") and w not in ("-h", "--help")), None)
    if flag is None:
        return None
    key = flag.lstrip("-").split("=", 1)[0].replace("-", "_")
    return f"{command}: error: {flag}: not an option; every setting is key=value, e.g. {key}=... (see {command} --help)"


class KeyValueParser(argparse.ArgumentParser):
    """The parser of a ``key=value`` command (its positional argument is named ``words``).

    A usage error or a ``-flag`` is one line on stderr naming ``prog`` and exit 2 (SystemExit);
    ``--help`` exits 0."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}; give key=value (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    def parse_words(self, argv: Optional[Sequence[str]] = None) -> list[str]:
        """The ``words`` of ``argv`` (default: sys.argv[1:]), after refusing any ``-flag`` (`flag_error`)."""
        words = list(sys.argv[1:] if argv is None else argv)
        error = flag_error(words, self.prog)
        if error is not None:
            print(error, file=sys.stderr)
            raise SystemExit(2)
        return list(self.parse_args(words).words)


def split_arguments(words: Sequence[str]) -> tuple[Optional[str], list[str]]:
    """(CONFIG.yaml or None, [key=value, ...]) from positional words: the first word without ``=`` is the file."""
    config: Optional[str] = None
    overrides: list[str] = []
    for w in words:
        if "=" in w:
            overrides.append(w)
        elif config is None and not overrides:
            config = w
        else:
            raise ConfigError(f"{w!r}: expected key=value (a config file comes first, and only one)")
    return config, overrides


# --------------------------------------------------------------------------- help


@functools.lru_cache(maxsize=None)
def _attribute_docstrings(cls: type) -> dict[str, str]:
    """{field: the string literal under it in the class body} for ``cls`` and its dataclass bases."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:]):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                out[stmt.target.id] = " ".join(nxt.value.value.split())
    return out


def field_help(cls: type, f: dataclasses.Field) -> str:
    """The one-line help of a field: ``metadata['help']``, else the docstring under it, else ''."""
    return f.metadata.get("help") or _attribute_docstrings(cls).get(f.name, "")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _yaml_value(value: Any) -> str:
    return yaml.safe_dump(to_dict(value), default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def help_lines(cls: type, prefix: str = "", defaults: Any = None) -> list[str]:
    """One line per key of ``cls``: ``key (type, default D): help``; sections as ``[section]`` headers.

    defaults: an instance whose values are the defaults shown (a nested section's own
    default); None = the class's. A `variant` field lists every choice's keys under
    ``[key.name=<choice>]``.
    """
    lines: list[str] = []
    hints = _hints(cls)
    if defaults is None:
        defaults = cls()
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if "choose" in f.metadata:
            names = list(f.metadata["choices"]())
            lines.append(f"[{key}] {field_help(cls, f)}; {key}.name: one of {', '.join(names)}")
            for name in names:
                try:
                    chosen = f.metadata["choose"](name)
                except ValueError as exc:
                    lines.append(f"  {key}.name={name}: not available ({exc})")
                    continue
                lines.append(f"[{key}.name={name}] {(chosen.__doc__ or '').strip().splitlines()[0]}")
                lines.extend(line for line in help_lines(chosen, key + ".") if not line.startswith(f"  {key}.name "))
            continue
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(tp):
            lines.append(f"[{key}] {field_help(cls, f) or (tp.__doc__ or '').strip().splitlines()[0]}".rstrip())
            lines.extend(help_lines(tp, key + ".", value))
            continue
        text = field_help(cls, f)
        lines.append(f"  {key} ({type_name(tp)}, default {_yaml_value(value)}){': ' + text if text else ''}")
    return lines
