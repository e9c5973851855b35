"""The one config engine: building, checks per section, base: includes, help, torch-free."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from synthssl.core.config import (
    ConfigError,
    apply_override,
    build,
    find_config,
    help_lines,
    load_yaml,
    need,
    opt,
    split_arguments,
    to_dict,
    variant,
)


@dataclass
class Inner:
    """An inner section."""

    size: tuple[int, int] = (1, 3)
    """inclusive range of sizes."""
    mode: Literal["a", "b"] = "a"
    weight: float = opt(0.5, "a weight in [0, 1]")
    shares: dict[str, float] = opt({"x": 1.0, "y": 1.0}, "a mapping-valued option")

    def check(self) -> None:
        need(self.size[0] <= self.size[1], "size", "low <= high")
        need(0 <= self.weight <= 1, "weight", "a value in [0, 1]")


@dataclass
class Choice:
    """A choice named one."""

    name: str = "one"
    inner: Inner = field(default_factory=lambda: Inner(weight=0.0))
    """an inner section whose own default differs from its class's."""


@dataclass
class Other:
    """A choice named two."""

    name: str = "two"
    count: int = 2


CHOICES = {"one": Choice, "two": Other}


def _choose(name: str) -> type:
    if name not in CHOICES:
        raise ValueError(f"unknown choice {name!r}; choose one of {sorted(CHOICES)}")
    return CHOICES[name]


@dataclass
class Root:
    """The root."""

    path: Optional[str] = None
    inner: Inner = field(default_factory=Inner)
    pick: object = variant(Choice, _choose, lambda: list(CHOICES), "one of the choices")


def test_partial_sections_keep_their_own_defaults_and_errors_name_the_full_key():
    cfg = build(Root, {"inner": {"mode": "b"}, "pick": {"inner": {"size": [2, 5]}}})
    assert cfg.inner == Inner(mode="b")
    assert cfg.pick.inner == Inner(size=(2, 5), weight=0.0)  # merged over the field's default, not the class's
    assert build(Root, {"pick": {"name": "two", "count": 4}}).pick == Other(count=4)
    assert build(Root, {"inner": {"shares": {"x": 3.0}}}).inner.shares == {"x": 3.0}  # an option: replaced whole
    for tree, message in [
        ({"inner": {"colour": 1}}, "inner.colour: unknown key; the keys of inner are: size, mode, weight, shares"),
        ({"inner": {"size": [1, "x"]}}, "inner.size[1]: expected an integer, got 'x'"),
        ({"inner": {"mode": "c"}}, "inner.mode: expected one of ['a', 'b'], got 'c'"),
        ({"pick": {"inner": {"size": [4, 1]}}}, "pick.inner.size: expected low <= high"),
        ({"pick": {"name": "three"}}, "pick.name: unknown choice 'three'"),
        ({"pick": {"name": "two", "inner": {}}}, "pick.inner: unknown key; the keys of pick are: name, count"),
        ({"path": 3}, "path: expected str or null, got 3"),
    ]:
        with pytest.raises(ConfigError) as info:
            build(Root, tree)
        assert str(info.value).startswith(message), (str(info.value), message)


def test_base_files_merge_key_by_key(tmp_path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "budget.yaml").write_text("a: {x: 1, y: 2}\nb: [1]\n")
    (tmp_path / "mid.yaml").write_text("base: budget.yaml\na: {y: 3, z: 4}\n")  # a shipped name
    (tmp_path / "top.yaml").write_text("base: mid.yaml\nb: [2]\nc: 5\n")  # relative to this file
    assert load_yaml(tmp_path / "top.yaml", shipped) == {"a": {"x": 1, "y": 3, "z": 4}, "b": [2], "c": 5}
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_yaml(tmp_path / "loop.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML \(.* at line 2"):
        load_yaml(tmp_path / "bad.yaml")


def test_shipped_configs_are_found_without_a_path(tmp_path, monkeypatch):
    (tmp_path / "simclr.yaml").write_text("a: 1\n")
    monkeypatch.chdir(tmp_path.parent)
    for spec in ("simclr", "simclr.yaml", "configs/simclr.yaml", "train/configs/simclr.yaml"):
        assert find_config(spec, tmp_path) == tmp_path / "simclr.yaml"
    with pytest.raises(ConfigError, match="nope: config file not found; shipped configs: simclr"):
        find_config("nope", tmp_path)
    with pytest.raises(ConfigError, match="elsewhere/simclr.yaml: config file not found"):
        find_config("elsewhere/simclr.yaml", tmp_path)


def test_overrides_and_arguments():
    tree: dict = {"inner": {"mode": "a"}}
    for item in ("inner.size=[2, 3]", "inner.weight=1e-1", "pick.name=two", "path="):
        apply_override(tree, item)
    assert to_dict(build(Root, tree)) == {
        "path": "",
        "inner": {"size": [2, 3], "mode": "a", "weight": 0.1, "shares": {"x": 1.0, "y": 1.0}},
        "pick": {"name": "two", "count": 2},
    }
    with pytest.raises(ConfigError, match="inner.mode.x: inner.mode is not a section"):
        apply_override(tree, "inner.mode.x=1")
    assert split_arguments(["c.yaml", "a=1", "b=2"]) == ("c.yaml", ["a=1", "b=2"])
    assert split_arguments(["a=1"]) == (None, ["a=1"])
    with pytest.raises(ConfigError, match="'d.yaml': expected key=value"):
        split_arguments(["c.yaml", "a=1", "d.yaml"])


def test_help_lists_every_key_with_type_default_and_help():
    lines = help_lines(Root)
    assert "  inner.size (tuple[int, int], default [1, 3]): inclusive range of sizes." in lines
    assert "  inner.weight (float, default 0.5): a weight in [0, 1]" in lines
    assert "  inner.mode ('a' | 'b', default a)" in lines
    assert "[pick.name=one] A choice named one." in lines
    assert "  pick.inner.weight (float, default 0.0): a weight in [0, 1]" in lines  # the field's own default
    assert "  pick.count (int, default 2)" in lines


def test_the_engine_and_the_render_config_import_without_torch():
    code = (
        "import sys; import synthssl.core.config, synthssl.render.config, synthssl.render.cli; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
