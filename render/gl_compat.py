"""Every pyrender / PyOpenGL / NumPy-2 workaround of synthssl, in one place.

synthssl uses pyrender for its headless GL platforms (EGL, OSMesa): they create the context that
`synthssl.render.renderer` draws into with its own shaders. Import pyrender ONLY through
:func:`import_pyrender` (after :func:`use_backend`).
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
5. pyrender's ``EGLPlatform.delete_context`` calls ``eglTerminate`` on the display,
   which EGL shares per device within a process: deleting one renderer kills every
   other live renderer's context (EGL_BAD_DISPLAY). We destroy only the context.
6. Mesa's llvmpipe (the CPU driver) loads its libLLVM; loading triton's own LLVM after it
   in the same process crashes (segmentation fault). torch imports triton lazily (torchvision
   does, through ``torch._dynamo``), so a notebook that renders and then trains died there.
   Once a GL context lives in a process that has libLLVM loaded and no triton yet,
   :func:`keep_triton_out` makes ``import triton`` fail: torch then runs without it, which
   only CUDA kernels use. A process that imported torchvision (and triton) first is fine.
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

    if os.environ.get("PYOPENGL_PLATFORM") == "egl":
        _patch_egl_delete()  # workaround 5
    return pyrender


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


def keep_triton_out() -> bool:
    """Workaround 6: block ``import triton`` in this process when Mesa's libLLVM is loaded and triton
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
]
