"""Edge anti-aliasing (`appearance.antialias_by=edges`): a single-sample colour pass filtered at the
instance boundaries of the same view's id pass (the shard's contour map), and only there."""

from __future__ import annotations

import numpy as np
import pytest

from synthssl.dataset.contour import contour_from_instance
from synthssl.render.edge_antialias import smooth_edges


def test_edges_are_both_sides_of_every_instance_boundary():
    instance = np.array([[1, 1, 1, 1], [1, 3, 3, 1], [1, 1, 1, 1], [2, 2, 2, 2]], np.uint16)
    assert contour_from_instance(instance).astype(int).tolist() == [
        [0, 1, 1, 0],
        [1, 1, 1, 1],
        [1, 1, 1, 1],
        [1, 1, 1, 1],
    ]
    flat = np.full((3, 5), 4, np.uint16)
    flat[:, 3:] = 5
    assert contour_from_instance(flat).astype(int).tolist() == [[0, 0, 1, 1, 0]] * 3


def test_a_boundary_between_two_colours_is_mixed_half_and_half_with_a_tent():
    instance = np.zeros((3, 4), np.uint16)
    instance[:, 2:] = 1
    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[:, 2:] = 160
    out = smooth_edges(rgb, contour_from_instance(instance))
    # column 1 (dark side): 0.5 * 0 + 0.5 * (tent: 1/4 of the row weight reaches the bright column) = 20
    # column 2 (bright side): 0.5 * 160 + 0.5 * (3/4 * 160) = 140; columns 0 and 3 are not on the edge
    assert out[..., 0].tolist() == [[0, 20, 140, 160]] * 3
    assert np.array_equal(out[..., 0], out[..., 2])
    with pytest.raises(ValueError, match="differ in size"):
        smooth_edges(rgb, contour_from_instance(instance[:2]))


@pytest.mark.gl
def test_the_edges_pass_is_the_single_sample_pass_filtered_at_the_id_pass_edges():
    from synthssl.render.cameras import orbit_view
    from synthssl.render.config import config_from_dict
    from synthssl.render.renderer import SceneRenderer
    from synthssl.render.scene import SceneSampler

    scene = SceneSampler(config_from_dict({"physics": {"enabled": False}}), None).sample(3, 1)
    view = orbit_view(scene.base_orbit, 40, 40)
    plain, edges = SceneRenderer(40, 40, antialias="none"), SceneRenderer(40, 40, antialias="edges")
    try:
        b_plain, b_edges = plain.build(scene), edges.build(scene)
        contour = contour_from_instance(plain.render_geometry(b_plain, view).instance)
        single = plain.render_color(b_plain, view)
        filtered = edges.render_color(b_edges, view, contour=contour)
        with pytest.raises(ValueError, match="needs the view's contour map"):
            edges.render_color(b_edges, view)
    finally:
        plain.close()
        edges.close()
    assert np.array_equal(filtered, smooth_edges(single, contour))
    changed = np.any(filtered != single, axis=-1)
    assert changed.any() and not (changed & ~contour.astype(bool)).any()
    with pytest.raises(ValueError, match="antialias: one of msaa, edges, none"):
        SceneRenderer(40, 40, antialias="fxaa")


def test_an_unknown_method_is_a_config_error_naming_the_key():
    from synthssl.render.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match=r"^appearance\.antialias_by: expected msaa or edges, got 'fxaa'$"):
        config_from_dict({"appearance": {"antialias_by": "fxaa"}})
    assert config_from_dict({"appearance": {"antialias": False}}).appearance.antialias_mode == "none"
    assert config_from_dict({}).appearance.antialias_mode == "edges"  # the default
    assert config_from_dict({"appearance": {"antialias_by": "msaa"}}).appearance.antialias_mode == "msaa"
