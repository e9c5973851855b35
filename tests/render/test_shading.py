"""The colour pass shades as `synthssl.render.shaders` documents; texture mipmaps; one live scene."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from synthssl.dataset import geometry
from synthssl.dataset.schema import FLOOR_ID
from synthssl.render.appearance import Light, Material, look_at_pose
from synthssl.render.cameras import CameraView, Orbit, intrinsics, look_at
from synthssl.render.renderer import SceneRenderer, mipmaps
from synthssl.render.scene import Scene, SceneObject

H, W = 36, 48


def _floor_scene(lights, floor: Material) -> Scene:
    far = np.eye(4)
    far[:3, 3] = [9.0, 9.0, 0.1]  # the one object, out of view
    box = trimesh.creation.box(extents=(0.2, 0.2, 0.2))
    obj = SceneObject(box, "box", "test", np.full(3, 0.2), far, floor, smooth=False)
    return Scene(
        index=0,
        objects=[obj],
        floor_material=floor,
        walls=None,
        wall_material=None,
        lights=lights,
        ambient=np.full(3, 0.2),
        background=np.array([0.1, 0.2, 0.3]),
        base_orbit=Orbit(0.0, 45.0, 2.0, np.zeros(3), 0.0, 50.0),
        center=np.zeros(3),
    )


def _expected_floor_rgb(points, cam, base, roughness, metallic, lights, ambient):
    """uint8 [N, 3]: the documented model (shaders.COLOR_FRAGMENT) in float64 at floor points [N, 3]."""
    n = np.array([0.0, 0.0, 1.0])
    v = cam - points
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    c_diff = base * 0.96 * (1 - metallic)
    f0 = 0.04 * (1 - metallic) + base * metallic
    color = np.zeros_like(points)
    for light in lights:
        direction = -light.pose[:3, 2]
        radiance = np.asarray(light.color) * light.intensity * np.ones((len(points), 1))
        if light.kind == "directional":
            l = np.broadcast_to(-direction, points.shape)
        else:
            to_light = light.pose[:3, 3] - points
            d2 = (to_light**2).sum(1)
            l = to_light / np.sqrt(d2)[:, None]
            falloff = np.ones(len(points))
            if light.kind == "spot":
                outer = np.cos(np.pi / 4)
                scale = 1 / (1 - outer)
                falloff = np.clip(np.clip((-l) @ direction, 0, 1) * scale - outer * scale, 0, 1) ** 2
            radiance = radiance * (falloff / d2)[:, None]
        h = l + v
        h /= np.linalg.norm(h, axis=1, keepdims=True)
        nl = np.clip(l @ n, 0.001, 1)
        nv = np.clip(np.abs(v @ n), 0.001, 1)
        nh = np.clip(h @ n, 0, 1)
        vh = np.clip((v * h).sum(1), 0, 1)
        F = f0 + (1 - f0) * ((1 - vh) ** 5)[:, None]
        k = (roughness + 1) ** 2 / 8
        G = nv / (nv * (1 - k) + k) * nl / (nl * (1 - k) + k)
        a2 = roughness**4
        D = a2 / (np.pi * (nh**2 * (a2 - 1) + 1) ** 2)
        diffuse = (1 - F) * c_diff / np.pi
        specular = F * (G * D / (4 * nl * nv + 0.001))[:, None]
        color += nl[:, None] * radiance * (diffuse + specular)
    color += base * ambient
    return np.rint(np.clip(color ** (1 / 2.2), 0, 1) * 255)


@pytest.mark.gl
@pytest.mark.parametrize("kind", ["directional", "point", "spot"])
def test_colour_pass_shades_the_floor_as_documented(kind):
    base = np.array([0.8, 0.5, 0.3])
    floor = Material(base, 0.35, 0.3, None, "plain", 0.5)
    eye = np.array([0.4, -0.5, 1.2]) if kind != "directional" else np.array([1.0, 1.0, 3.0])
    lights = [
        Light(kind, np.array([1.0, 0.9, 0.8]), 2.0 if kind == "directional" else 3.0, look_at_pose(eye, np.zeros(3)))
    ]
    K = intrinsics(60.0, H, W)
    T = look_at(np.array([0.3, -1.2, 0.9]), np.array([0.0, 0.1, 0.0]), roll_deg=5.0)
    view = CameraView(K, T, H, W)
    r = SceneRenderer(H, W, antialias="none")
    try:
        b = r.build(_floor_scene(lights, floor))
        g = r.render_geometry(b, view)
        rgb = r.render_color(b, view)
    finally:
        r.close()
    on_floor = g.instance == FLOOR_ID
    assert on_floor.all()  # the view sees nothing but floor
    points = geometry.transform(geometry.unproject(g.depth, K), T)[on_floor]
    expected = _expected_floor_rgb(points, T[:3, 3], base, 0.35, 0.3, lights, 0.2)
    got = rgb[on_floor].astype(np.float64)
    assert np.abs(got - expected).max() <= 1, np.abs(got - expected).max()  # float32 against float64
    assert expected.std(axis=0).min() > 2  # the lighting varies across the view: the test can tell


def test_mipmaps_halve_by_area_averaging_down_to_one_pixel():
    image = np.array([[[0, 4, 8, 12], [4, 8, 12, 16], [8, 12, 16, 20], [12, 16, 20, 24]]], np.uint8)[..., None]
    levels = mipmaps(np.repeat(image, 3, axis=-1))
    assert [lv.shape for lv in levels] == [(1, 4, 4, 3), (1, 2, 2, 3), (1, 1, 1, 3)]
    assert levels[1][0, :, :, 0].tolist() == [[4, 12], [12, 20]]
    assert levels[2][0, 0, 0].tolist() == [12, 12, 12]
    odd = mipmaps(np.zeros((2, 5, 7, 3), np.uint8))
    assert [lv.shape for lv in odd] == [(2, 5, 7, 3), (2, 2, 3, 3), (2, 1, 1, 3)]  # GL's level sizes


def test_mipmaps_keep_the_mean_brightness_at_every_level():
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3)).astype(np.uint8)
    drift = [float(level.mean()) - float(image.mean()) for level in mipmaps(image)]
    # each level rounded once from a float chain; rounding each level from the last drifts 0.13,
    # 0.28, 0.39, 0.52, 0.60 and 1.1 grey levels brighter on this image
    assert max(abs(d) for d in drift[1:6]) < 0.03, drift
    assert mipmaps(image)[6][0, 0, 0].tolist() == [127, 128, 128]  # each channel's mean 126.85, 128.24, 127.61, rounded


@pytest.mark.gl
def test_only_the_last_built_scene_renders():
    floor = Material(np.full(3, 0.5), 0.5, 0.0, None, "plain", 0.5)
    light = Light("directional", np.ones(3), 2.0, look_at_pose(np.array([1.0, 1.0, 3.0]), np.zeros(3)))
    view = CameraView(intrinsics(60.0, H, W), look_at(np.array([0.3, -1.2, 0.9]), np.zeros(3)), H, W)
    r = SceneRenderer(H, W, antialias="none")
    try:
        first = r.build(_floor_scene([light], floor))
        r.build(_floor_scene([light], floor))
        with pytest.raises(RuntimeError, match="stale"):
            r.render_geometry(first, view)
    finally:
        r.close()
