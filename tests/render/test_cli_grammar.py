"""render-scenes: one grammar ([CONFIG.yaml] key=value ...), --help lists every key."""

from __future__ import annotations

import pytest

from synthssl.core.config import help_lines, to_dict
from synthssl.render import cli
from synthssl.render.config import RenderConfig


def test_config_errors_are_one_line_naming_the_key(tmp_path, capsys):
    for argv, message in [
        (["objects.count=[9,3]"], "objects.count: expected 1 <= low <= high"),
        (["appearance.lights=[1,9]"], "appearance.lights: expected 1 <= low <= high <= 8"),
        (["camera.fov=[1,2,3]"], "camera.fov: expected a list of 2 values"),
        (["nope.yaml"], "nope.yaml: config file not found; shipped configs: demo"),
        (["scenes=2"], "out: required; give out=DIR"),
    ]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_help_lists_every_key_with_type_default_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    leaves = {
        f"{k}.{f}"
        for k, v in to_dict(RenderConfig()).items()
        if isinstance(v, dict) and k in ("objects", "physics", "appearance", "camera")
        for f in v
    }
    leaves |= {k for k, v in to_dict(RenderConfig()).items() if k not in ("objects", "physics", "appearance", "camera")}
    keys = {line.split(" (")[0].strip(): line for line in help_lines(RenderConfig) if line.startswith("  ")}
    assert set(keys) == leaves
    for key, line in keys.items():
        assert line in text and "): " in line and len(line.split("): ", 1)[1]) > 5, line  # type, default, help
    for key in (
        "scenes (int, default 16)",
        "seed (int, default 0)",
        "shard_index (int, default 0)",
        "camera.overlap (tuple[float, float], default [0.3, 0.9])",
    ):
        assert key in text, key
