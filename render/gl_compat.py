"""Every pyrender / PyOpenGL / NumPy-2 workaround of synthssl, in one place.

Import pyrender ONLY through :func:`import_pyrender` (after :func:`use_backend`).
Why each workaround exists:

1. ``PYOPENGL_PLATFORM`` must be set before PyOpenGL is first imported: PyOpenGL
   binds its platform (EGL / OSMesa / GLX) at import time and cannot switch later.
   Hence backend probing for ``auto`` runs in a subprocess (:func:`probe_backend`).
2. ``pyrender/__init__`` imports its pyglet viewer, which imports pyglet's GL and
   GLU bindings (libGLU missing on GPU servers; a window system may be touched).
   We never use the viewer, so a stub ``pyrender.viewer`` module is registered
   before pyrender is imported.
3. NumPy 2 removed ``np.infty``; pyrender 0.1.45 still uses it (``Mesh.bounds``
   of an empty mesh). We restore the alias.
4. pyrender 0.1.45 pins PyOpenGL 3.1.0, whose OSMesa binding is broken; PyOpenGL
   >= 3.1.5 is required (3.1.10 works). :func:`check_pyopengl` says so clearly.
5. pyrender renders into a 4x multisampled framebuffer and resolves it with a
   linear blit. Averaged colours would corrupt the id pass (face ids encoded in
   colours) and the depth resolve takes one *sample*, not the pixel centre. We
   patch ``Renderer._configure_main_framebuffer`` so the sample count is chosen
   per pass (:func:`set_msaa_samples`): 0 for id/depth passes (exact values at
   pixel centres), 4 for the anti-aliased colour pass. (speed) The framebuffers of each
   sample count are kept, so a scene's passes switch between them without reallocating.
6. pyrender's ``EGLPlatform.delete_context`` calls ``eglTerminate`` on the display,
   which EGL shares per device within a process: deleting one renderer kills every
   other live renderer's context (EGL_BAD_DISPLAY). We destroy only the context.
7. (speed) pyrender's ``ShaderProgram.set_uniform`` asks GL for the uniform's location
   on every call (~100 calls per pass). Locations are fixed while a program lives, so
   they are cached per ShaderProgram object (dropped when it leaves the context). And
   pyrender sets the camera and every light again for each primitive it draws: a uniform
   keeps its value in its program until it is set again, so a call with the value the
   uniform already holds is not sent to GL (the values are remembered per program, and
   forgotten when it leaves the context).
8. Mesa's llvmpipe (the CPU driver) loads its libLLVM; loading triton's own LLVM after it
   in the same process crashes (segmentation fault). torch imports triton lazily (torchvision
   does, through ``torch._dynamo``), so a notebook that renders and then trains died there.
   Once a GL context lives in a process that has libLLVM loaded and no triton yet,
   :func:`keep_triton_out` makes ``import triton`` fail: torch then runs without it, which
   only CUDA kernels use. A process that imported torchvision (and triton) first is fine.
9. (speed) pyrender computes a node's world pose (``Scene.get_pose``: a walk up the scene
   graph, ~40 calls per pass) every time it is asked. Poses change only through
   ``Scene.set_pose`` and when nodes are added or removed, so each scene keeps the poses it
   computed until one of those happens.
10. (speed) pyrender reads the depth buffer back after every pass (a multisample depth
   resolve, a read and a conversion to metres). A colour pass whose depth nobody uses
   reads only the colour (:func:`set_color_only`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

BACKENDS = ("egl", "osmesa")
#: Debian packages providing each headless backend (named in error messages).
BACKEND_PACKAGES = {
    "egl": "libegl1 libegl-mesa0 libgl1-mesa-dri (Mesa EGL on CPU; NVIDIA driver + libglvnd on GPU)",
    "osmesa": "libosmesa6",
}


class BackendError(RuntimeError):
    """No usable headless OpenGL backend."""


def use_backend(backend: str) -> str:
    """Select the PyOpenGL platform ('egl' | 'osmesa' | 'auto') before pyrender is imported.

    'auto' keeps an already-set ``PYOPENGL_PLATFORM`` (egl/osmesa), otherwise probes EGL
    then OSMesa in subprocesses. Returns the backend in use.
    """
    current = os.environ.get("PYOPENGL_PLATFORM")
    if backend == "auto":
        backend = current if current in BACKENDS else select_working_backend()
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected 'auto', 'egl' or 'osmesa', got {backend!r}")
    if "OpenGL" in sys.modules and current != backend:
        raise BackendError(
            f"backend {backend!r} requested but PyOpenGL was already imported with "
            f"PYOPENGL_PLATFORM={current!r}; select the backend before importing pyrender"
        )
    os.environ["PYOPENGL_PLATFORM"] = backend
    return backend


def select_working_backend() -> str:
    """First backend of :data:`BACKENDS` that renders in a subprocess, else :class:`BackendError`."""
    errors = {}
    for name in BACKENDS:
        ok, message = probe_backend(name)
        if ok:
            return name
        errors[name] = message
    lines = "; ".join(f"{n}: {errors[n]} (install: {BACKEND_PACKAGES[n]})" for n in BACKENDS)
    raise BackendError(f"no headless OpenGL backend works: {lines}")


def probe_backend(name: str, timeout: float = 60.0) -> tuple[bool, str]:
    """Try to render an 8x8 image with backend ``name`` in a fresh Python process."""
    code = (
        "from synthssl.render import gl_compat as g\n"
        f"g.use_backend({name!r})\n"
        "pr = g.import_pyrender()\n"
        "r = pr.OffscreenRenderer(8, 8)\n"
        "s = pr.Scene()\n"
        "s.add(pr.IntrinsicsCamera(4.0, 4.0, 4.0, 4.0))\n"
        "r.render(s, flags=pr.RenderFlags.DEPTH_ONLY)\n"
        "r.delete()\n"
    )
    env = dict(os.environ, PYOPENGL_PLATFORM=name)
    try:
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "probe timed out"
    if res.returncode == 0:
        return True, ""
    tail = (res.stderr.strip().splitlines() or ["unknown error"])[-1]
    return False, tail[:300]


def check_pyopengl() -> None:
    """Raise if PyOpenGL is older than 3.1.5 (its OSMesa binding does not work)."""
    import OpenGL

    parts = tuple(int(p) for p in OpenGL.__version__.split(".")[:3] if p.isdigit())
    if parts < (3, 1, 5):
        raise BackendError(
            f"PyOpenGL {OpenGL.__version__} is too old (pyrender pins 3.1.0); "
            "install PyOpenGL>=3.1.5: pip install 'PyOpenGL>=3.1.5'"
        )


def import_pyrender():
    """Import pyrender with all workarounds applied (call :func:`use_backend` first). Idempotent:
    each workaround checks whether it is in place, and Python keeps the imported modules."""
    if os.environ.get("PYOPENGL_PLATFORM") not in BACKENDS:
        use_backend("auto")
    import numpy as np

    if not hasattr(np, "infty"):  # workaround 3
        np.infty = np.inf
    if "pyrender.viewer" not in sys.modules:  # workaround 2
        stub = types.ModuleType("pyrender.viewer")

        class Viewer:  # noqa: D401 - stand-in, never used by synthssl
            def __init__(self, *args, **kwargs):
                raise RuntimeError("the pyrender viewer is disabled in synthssl (headless rendering only)")

        stub.Viewer = Viewer
        sys.modules["pyrender.viewer"] = stub
    check_pyopengl()  # workaround 4
    import pyrender

    _patch_msaa(pyrender)  # workaround 5
    _patch_uniform_locations(pyrender)  # workaround 7
    _patch_pose_cache(pyrender)  # workaround 9
    _patch_color_only(pyrender)  # workaround 10
    if os.environ.get("PYOPENGL_PLATFORM") == "egl":
        _patch_egl_delete()  # workaround 6
    return pyrender


_MAIN_FB_ATTRS = ("_main_fb", "_main_cb", "_main_db", "_main_fb_ms", "_main_cb_ms", "_main_db_ms")


def _patch_msaa(pyrender) -> None:
    from OpenGL import GL as gl

    renderer_cls = pyrender.renderer.Renderer
    if getattr(renderer_cls, "_synthssl_patched", False):
        return
    orig_delete = renderer_cls._delete_main_framebuffer

    def _configure_main_framebuffer(self):
        samples = int(getattr(self, "_synthssl_msaa", 4))
        dims = (self.viewport_width, self.viewport_height)
        kept = self.__dict__.setdefault("_synthssl_fbs", {})  # sample count -> the six GL names
        if kept and self._main_fb_dims != dims:
            self._delete_main_framebuffer()
        if samples in kept:
            for name, value in zip(_MAIN_FB_ATTRS, kept[samples]):
                setattr(self, name, value)
            return
        w, h = dims
        main_cb, main_db = gl.glGenRenderbuffers(2)
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, main_cb)
        gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, gl.GL_RGBA, w, h)
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, main_db)
        gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, gl.GL_DEPTH_COMPONENT24, w, h)
        main_fb = gl.glGenFramebuffers(1)
        gl.glBindFramebuffer(gl.GL_DRAW_FRAMEBUFFER, main_fb)
        gl.glFramebufferRenderbuffer(gl.GL_DRAW_FRAMEBUFFER, gl.GL_COLOR_ATTACHMENT0, gl.GL_RENDERBUFFER, main_cb)
        gl.glFramebufferRenderbuffer(gl.GL_DRAW_FRAMEBUFFER, gl.GL_DEPTH_ATTACHMENT, gl.GL_RENDERBUFFER, main_db)
        # samples == 0 gives ordinary single-sample storage: the blit is then an exact copy.
        ms_cb, ms_db = gl.glGenRenderbuffers(2)
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, ms_cb)
        gl.glRenderbufferStorageMultisample(gl.GL_RENDERBUFFER, samples, gl.GL_RGBA, w, h)
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, ms_db)
        gl.glRenderbufferStorageMultisample(gl.GL_RENDERBUFFER, samples, gl.GL_DEPTH_COMPONENT24, w, h)
        ms_fb = gl.glGenFramebuffers(1)
        gl.glBindFramebuffer(gl.GL_DRAW_FRAMEBUFFER, ms_fb)
        gl.glFramebufferRenderbuffer(gl.GL_DRAW_FRAMEBUFFER, gl.GL_COLOR_ATTACHMENT0, gl.GL_RENDERBUFFER, ms_cb)
        gl.glFramebufferRenderbuffer(gl.GL_DRAW_FRAMEBUFFER, gl.GL_DEPTH_ATTACHMENT, gl.GL_RENDERBUFFER, ms_db)
        kept[samples] = (main_fb, main_cb, main_db, ms_fb, ms_cb, ms_db)
        for name, value in zip(_MAIN_FB_ATTRS, kept[samples]):
            setattr(self, name, value)
        self._main_fb_dims = dims

    def _delete_main_framebuffer(self):
        """Delete the framebuffers of every sample count (pyrender deletes the current set)."""
        for names in self.__dict__.pop("_synthssl_fbs", {}).values():
            for attr, value in zip(_MAIN_FB_ATTRS, names):
                setattr(self, attr, value)
            orig_delete(self)
        orig_delete(self)  # nothing left to delete: resets the attributes and the dims

    renderer_cls._configure_main_framebuffer = _configure_main_framebuffer
    renderer_cls._delete_main_framebuffer = _delete_main_framebuffer
    renderer_cls._synthssl_patched = True


def _patch_egl_delete() -> None:
    from pyrender.platforms import egl

    def delete_context(self):
        from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent

        if self._egl_display is not None and self._egl_context is not None:
            eglMakeCurrent(self._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
            eglDestroyContext(self._egl_display, self._egl_context)
        self._egl_context = None
        self._egl_display = None

    egl.EGLPlatform.delete_context = delete_context


def _patch_uniform_locations(pyrender) -> None:
    sp = pyrender.shader_program
    cls = sp.ShaderProgram
    if getattr(cls, "_synthssl_patched", False):
        return
    raw_get = sp.glGetUniformLocation
    active: dict = {"locs": None}  # the cache of the program whose set_uniform is running

    def get_location(program, name):
        locs = active["locs"]
        if locs is None:
            return raw_get(program, name)
        loc = locs.get(name)
        if loc is None:
            loc = locs[name] = raw_get(program, name)
        return loc

    orig_set, orig_add, orig_remove = cls.set_uniform, cls._add_to_context, cls._remove_from_context

    def set_uniform(self, name, value, unsigned=False):
        held = self.__dict__.setdefault("_synthssl_values", {})
        key = _uniform_key(value, unsigned)
        if key is not None and held.get(name) == key:
            return None
        active["locs"] = self.__dict__.setdefault("_synthssl_locs", {})
        try:
            return orig_set(self, name, value, unsigned)
        finally:
            active["locs"] = None
            if key is not None:
                held[name] = key

    def add_to_context(self):
        self._synthssl_locs, self._synthssl_values = {}, {}
        return orig_add(self)

    def remove_from_context(self):
        self._synthssl_locs, self._synthssl_values = {}, {}
        return orig_remove(self)

    sp.glGetUniformLocation = get_location
    cls.set_uniform, cls._add_to_context, cls._remove_from_context = set_uniform, add_to_context, remove_from_context
    cls._synthssl_patched = True


def _uniform_key(value, unsigned: bool):
    """What identifies a uniform value as pyrender sends it (type, shape and bytes); None for a
    value it would not send (it is then passed on, and pyrender decides)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, unsigned, value.tobytes())
    if isinstance(value, (bool, int, float)):
        return (type(value), unsigned, value)
    return None


def _patch_pose_cache(pyrender) -> None:
    cls = pyrender.scene.Scene
    if getattr(cls, "_synthssl_patched", False):
        return
    orig_get, orig_set, orig_add, orig_remove = cls.get_pose, cls.set_pose, cls.add_node, cls.remove_node

    def get_pose(self, node):
        poses = self.__dict__.setdefault("_synthssl_poses", {})
        pose = poses.get(node)
        if pose is None:
            pose = poses[node] = orig_get(self, node)
            pose.setflags(write=False)  # shared by every caller until the cache is dropped
        return pose

    def forget(orig):
        def method(self, *args, **kwargs):
            self.__dict__.pop("_synthssl_poses", None)
            return orig(self, *args, **kwargs)

        return method

    cls.get_pose = get_pose
    cls.set_pose, cls.add_node, cls.remove_node = forget(orig_set), forget(orig_add), forget(orig_remove)
    cls._synthssl_patched = True


def _patch_color_only(pyrender) -> None:
    import numpy as np
    from OpenGL import GL as gl

    cls = pyrender.renderer.Renderer
    if getattr(cls, "_synthssl_color_only_patched", False):
        return
    orig_read = cls._read_main_framebuffer

    def read_main_framebuffer(self, scene, flags):
        if not getattr(self, "_synthssl_color_only", False) or flags & (
            pyrender.RenderFlags.DEPTH_ONLY | pyrender.RenderFlags.RGBA
        ):
            return orig_read(self, scene, flags)
        width, height = self._main_fb_dims[0], self._main_fb_dims[1]
        gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, self._main_fb_ms)
        gl.glBindFramebuffer(gl.GL_DRAW_FRAMEBUFFER, self._main_fb)
        gl.glBlitFramebuffer(0, 0, width, height, 0, 0, width, height, gl.GL_COLOR_BUFFER_BIT, gl.GL_LINEAR)
        gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, self._main_fb)
        buf = gl.glReadPixels(0, 0, width, height, gl.GL_RGB, gl.GL_UNSIGNED_BYTE)
        color = np.flip(np.frombuffer(buf, dtype=np.uint8).reshape((height, width, 3)), axis=0)
        return color, None

    cls._read_main_framebuffer = read_main_framebuffer
    cls._synthssl_color_only_patched = True


def keep_triton_out() -> bool:
    """Workaround 8: block ``import triton`` in this process when Mesa's libLLVM is loaded and triton
    is not (see the module docstring). Returns True when it blocked it. Linux only (reads /proc)."""
    if "triton" in sys.modules:
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            llvm = any("libLLVM" in line for line in maps)
    except OSError:
        return False
    if llvm:
        sys.modules["triton"] = None  # `import triton` raises ImportError; torch treats triton as absent
    return llvm


def set_msaa_samples(offscreen_renderer, samples: int) -> None:
    """Multisample count (0 = exact single-sample) of the next passes of a pyrender OffscreenRenderer."""
    offscreen_renderer._renderer._synthssl_msaa = int(samples)


def set_color_only(offscreen_renderer, color_only: bool) -> None:
    """Whether the next passes of a pyrender OffscreenRenderer read back only the colour (the
    depth they return is then None; workaround 10)."""
    offscreen_renderer._renderer._synthssl_color_only = bool(color_only)


__all__ = [
    "BACKENDS",
    "BACKEND_PACKAGES",
    "BackendError",
    "use_backend",
    "keep_triton_out",
    "select_working_backend",
    "probe_backend",
    "check_pyopengl",
    "import_pyrender",
    "set_msaa_samples",
    "set_color_only",
]
