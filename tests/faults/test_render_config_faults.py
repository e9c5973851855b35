"""Render config mistakes are one line naming the key and touch nothing (issue 33)."""

from __future__ import annotations

import pytest
from helpers.faults import one_line

TINY = ("size=16", "shard_size=2", "seed=3", "physics.enabled=false", "--no-progress")


def _render(out, *extra: str) -> list[str]:
    return [f"out={out}", "scenes=4", "workers=1", *TINY, *extra]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (("seed=-1",), "render-scenes: seed: expected a whole number in 0..2**63-1, got -1 (config: "),
        (("seed=1e23",), "render-scenes: seed: expected an integer, got 1e+23 (config: "),
        (
            ("seed=9223372036854775808",),
            "render-scenes: seed: expected a whole number in 0..2**63-1, got 9223372036854775808 (config: ",
        ),
        (
            ("objects.primitives=[box,teapot]",),
            "render-scenes: objects.primitives: expected names among box, sphere, cylinder, capsule, cone, "
            "torus; got unknown 'teapot' (config: ",
        ),
        (
            ("objects.procedural=[knot]",),
            "render-scenes: objects.procedural: expected names among hull, extrusion, superquadric, lathe, "
            "blob; got unknown 'knot' (config: ",
        ),
    ],
)
def test_config_mistakes_are_one_line_and_touch_nothing(tmp_path, capsys, extra, expected):
    from synthssl.render.cli import main

    out = tmp_path / "shards"
    assert main(_render(out, *extra)) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(expected), line
    assert not out.exists()


def test_the_shape_names_the_config_allows_are_the_shapes_there_are():
    from synthssl.render import shapes
    from synthssl.render.config import PRIMITIVE_NAMES, PROCEDURAL_NAMES

    assert list(shapes.PRIMITIVES) == list(PRIMITIVE_NAMES)
    assert list(shapes.PROCEDURAL) == list(PROCEDURAL_NAMES)
