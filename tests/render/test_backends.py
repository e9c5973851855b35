"""Both headless GL platforms (Mesa EGL and OSMesa) render the same exact geometry.

PyOpenGL binds its platform at import, so each backend runs in its own process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from synthssl.render import gl_compat

pytestmark = [pytest.mark.gl]

SCRIPT = r"""
import json, sys
import numpy as np
from synthssl.render.config import config_from_dict
from synthssl.render.scene import SceneSampler
from synthssl.render.renderer import SceneRenderer, camera_normals
from synthssl.render.cameras import orbit_view
cfg = config_from_dict({"physics": {"enabled": False}})
scene = SceneSampler(cfg, None).sample(3, 1)
r = SceneRenderer(40, 40, backend=sys.argv[1])
b = r.build(scene)
view = orbit_view(scene.base_orbit, 40, 40)
g = r.render_geometry(b, view)
n = camera_normals(b, g, view)
rgb = r.render_color(b, view)
np.savez(sys.argv[2], depth=g.depth, instance=g.instance, normal=n, rgb=rgb)
print(json.dumps({"backend": r.backend}))
"""


def _render(backend, path):
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT, backend, str(path)], capture_output=True, text=True, timeout=120
    )
    if res.returncode != 0:
        pytest.skip(f"{backend} not usable here: {res.stderr.strip().splitlines()[-1:]}")
    assert json.loads(res.stdout.strip().splitlines()[-1])["backend"] == backend
    return np.load(path)


def test_egl_and_osmesa_agree(tmp_path):
    a = _render("egl", tmp_path / "egl.npz")
    b = _render("osmesa", tmp_path / "osmesa.npz")
    assert (a["instance"] > 0).mean() > 0.5
    assert np.mean(a["instance"] == b["instance"]) > 0.995
    same = (a["instance"] == b["instance"]) & (a["instance"] > 0)
    assert np.allclose(a["depth"][same], b["depth"][same], rtol=1e-4)
    assert np.mean(np.all(np.abs(a["normal"] - b["normal"]) < 1e-5, axis=-1)[same]) > 0.99
    # shading may differ slightly (MSAA sample patterns, texture filtering), the image must not
    assert np.mean(np.abs(a["rgb"].astype(int) - b["rgb"].astype(int)).max(axis=-1) <= 12) > 0.9


def test_probe_reports_working_backend_and_rejects_unknown():
    ok, message = gl_compat.probe_backend("egl")
    assert ok or message
    with pytest.raises(ValueError, match="backend"):
        gl_compat.use_backend("vulkan")
