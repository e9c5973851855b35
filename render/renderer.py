"""OpenGL offscreen rendering of a :class:`~synthssl.render.scene.Scene` into exact maps.

One :class:`SceneRenderer` per process (one GL context, created by pyrender's headless platform:
`synthssl.render.gl_compat`), reused across scenes. `SceneRenderer.build` uploads a scene once:
every surface's unshared vertices, in world coordinates, into one vertex buffer, and every
texture into one texture array (`synthssl.render.shaders` gives the layout). Each pass is then
one draw call of that buffer:

* **id pass** (`SceneRenderer.render_geometry`, single-sample): per pixel centre, the index of
  the triangle it shows in the scene's buffer (``gl_PrimitiveID``), its instance id looked up
  from it, and the z-depth in metres (0 where nothing is hit). Normals are the *geometric* face
  normals looked up by that triangle index (rotated into the camera frame and turned towards the
  camera: `camera_normals`), so they are exact, never finite differences.
* **colour pass** (`SceneRenderer.render_color`, lit and textured), anti-aliased by ``antialias``:
  ``msaa`` (4x multisampling), ``edges`` (single-sample, then the contour pixels filtered:
  :mod:`edge_antialias`) or ``none``.

Camera conversion: the shard's OpenCV camera (x right, y down, z forward; pixel centres at
integer coordinates) becomes an OpenGL camera (x right, y up, z backward) with
``pose_gl = cam_to_world @ diag(1, -1, -1, 1)`` and principal point ``(cx + 0.5, cy + 0.5)``: GL
puts pixel centres at half-integers (derivation: the GL window coordinate of a point is
``fx X/Z + cx_gl`` for columns, row ``r`` spans window y in [H-1-r, H-r], so both axes shift by
exactly one half pixel). Rows are read back bottom-up and flipped to the image's top-down order.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import cv2
import numpy as np

from synthssl.dataset.schema import FIRST_OBJECT_ID, FLOOR_ID, WALL_ID

from . import gl_compat, shaders
from .appearance import Light, Material
from .cameras import CV_TO_GL, CameraView
from .config import ANTIALIAS_METHODS
from .edge_antialias import smooth_edges
from .mesh_buffers import shading_normals, triplanar_uv, unshared_positions
from .scene import Scene

Z_NEAR = 0.03
Z_FAR = 200.0
#: What `SceneRenderer` can anti-alias the colour pass by (``appearance.antialias_mode``).
ANTIALIAS_MODES = (*ANTIALIAS_METHODS, "none")
#: Samples per pixel of the ``msaa`` colour pass.
MSAA_SAMPLES = 4
_FLOATS_PER_VERTEX = sum(n for _, n in shaders.VERTEX_LAYOUT)


@dataclass
class GeometryMaps:
    """Exact per-pixel geometry of one view (OpenCV camera frame)."""

    depth: np.ndarray
    """float32 [H, W] metres, 0 = no surface."""
    instance: np.ndarray
    """uint16 [H, W] (0 background, 1 floor, 2 wall, 3+k object k)."""
    face: np.ndarray
    """int64 [H, W] the pixel's face in the scene's buffer (`BuiltScene` face tables); 0 = no surface."""


@dataclass
class BuiltScene:
    """A Scene uploaded to its renderer's GL context, plus the lookup tables for the maps. Only the
    scene a renderer built last can be rendered (`SceneRenderer.build` reuses the buffers)."""

    generation: int
    """which `SceneRenderer.build` call of its renderer made it."""
    vertices: int
    """vertices in the scene's buffer (three per face)."""
    lights: list[Light]
    ambient: np.ndarray
    """float32 [3] ambient RGB."""
    background: np.ndarray
    """float [3] RGB in [0, 1] of the colour pass's empty pixels."""
    face_normals: np.ndarray
    """float64 [total faces, 3] world-frame unit face normals of every instance, in buffer order."""
    face_points: np.ndarray
    """float64 [total faces, 3] world-frame first corner of each face, in buffer order."""
    face_instance: np.ndarray
    """uint16 [total faces]: the instance id of each face of the buffer."""


class _Framebuffer:
    """A framebuffer of renderbuffers: ``formats`` colour attachments plus a depth buffer."""

    def __init__(self, gl, width: int, height: int, formats: tuple[int, ...], samples: int = 0):
        self.gl = gl
        self.fb = gl.glGenFramebuffers(1)
        self.rbs = [int(x) for x in np.atleast_1d(gl.glGenRenderbuffers(len(formats) + 1))]
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.fb)
        attachments = [gl.GL_COLOR_ATTACHMENT0 + i for i in range(len(formats))]
        for rb, fmt, att in zip(self.rbs, (*formats, gl.GL_DEPTH_COMPONENT24), (*attachments, gl.GL_DEPTH_ATTACHMENT)):
            gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, rb)
            if samples:
                gl.glRenderbufferStorageMultisample(gl.GL_RENDERBUFFER, samples, fmt, width, height)
            else:
                gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, fmt, width, height)
            gl.glFramebufferRenderbuffer(gl.GL_FRAMEBUFFER, att, gl.GL_RENDERBUFFER, rb)
        gl.glDrawBuffers(len(attachments), attachments)
        status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
        if status != gl.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"OpenGL framebuffer incomplete (status {status:#x})")

    def delete(self) -> None:
        self.gl.glDeleteRenderbuffers(len(self.rbs), self.rbs)
        self.gl.glDeleteFramebuffers(1, [self.fb])


def _program(gl, vertex: str, fragment: str) -> int:
    from OpenGL.GL import shaders as gl_shaders

    return gl_shaders.compileProgram(
        gl_shaders.compileShader(vertex, gl.GL_VERTEX_SHADER),
        gl_shaders.compileShader(fragment, gl.GL_FRAGMENT_SHADER),
        validate=False,  # validation needs a bound vertex array; the programs are checked by linking
    )


def projection(view: CameraView) -> np.ndarray:
    """float64 [4, 4] GL projection of ``view``'s intrinsics (clip space, near `Z_NEAR`, far `Z_FAR`)."""
    K, w, h = view.K, view.width, view.height
    cx, cy = K[0, 2] + 0.5, K[1, 2] + 0.5  # pixel centres at half-integers (module docstring)
    P = np.zeros((4, 4))
    P[0, 0], P[1, 1] = 2.0 * K[0, 0] / w, 2.0 * K[1, 1] / h
    P[0, 2], P[1, 2] = 1.0 - 2.0 * cx / w, 2.0 * cy / h - 1.0
    P[2, 2], P[2, 3] = (Z_FAR + Z_NEAR) / (Z_NEAR - Z_FAR), 2.0 * Z_FAR * Z_NEAR / (Z_NEAR - Z_FAR)
    P[3, 2] = -1.0
    return P


class SceneRenderer:
    """Offscreen renderer for scenes of one image size; see module docstring. ``antialias`` is one of
    `ANTIALIAS_MODES` (a render passes its ``appearance.antialias_mode``; ``edges`` needs each view's
    contour map in `render_color`)."""

    def __init__(self, height: int, width: int, backend: str = "auto", antialias: str = "msaa"):
        if antialias not in ANTIALIAS_MODES:
            raise ValueError(f"antialias: one of {', '.join(ANTIALIAS_MODES)}, got {antialias!r}")
        self.backend = gl_compat.use_backend(backend)
        pr = gl_compat.import_pyrender()
        self.height, self.width = int(height), int(width)
        self.antialias = antialias
        self._context = pr.OffscreenRenderer(self.width, self.height)  # the GL context, current from here on
        gl_compat.keep_triton_out()  # llvmpipe's LLVM is loaded now: torch must not load triton's
        from OpenGL import GL as gl

        self.gl = gl
        self._id_program = _program(gl, shaders.ID_VERTEX, shaders.ID_FRAGMENT)
        self._color_program = _program(gl, shaders.COLOR_VERTEX, shaders.COLOR_FRAGMENT)
        self._uniforms = {
            (p, name): gl.glGetUniformLocation(p, name)
            for p, names in (
                (self._id_program, ("view_proj", "view")),
                (
                    self._color_program,
                    ("view_proj", "cam_pos", "ambient", "n_lights", "textures", "light_kind", "light_color")
                    + ("light_position", "light_direction", "light_cone"),
                ),
            )
            for name in names
        }
        self._id_fb = _Framebuffer(gl, self.width, self.height, (gl.GL_R32UI, gl.GL_R32F))
        self._color_fb = _Framebuffer(gl, self.width, self.height, (gl.GL_RGBA8,))
        self._msaa_fb = (
            _Framebuffer(gl, self.width, self.height, (gl.GL_RGBA8,), MSAA_SAMPLES) if antialias == "msaa" else None
        )
        self._vao = gl.glGenVertexArrays(1)
        self._vbo = gl.glGenBuffers(1)
        self._textures = gl.glGenTextures(1)
        gl.glBindVertexArray(self._vao)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self._vbo)
        stride, offset = 4 * _FLOATS_PER_VERTEX, 0
        for location, (_, n) in enumerate(shaders.VERTEX_LAYOUT):
            gl.glEnableVertexAttribArray(location)
            gl.glVertexAttribPointer(location, n, gl.GL_FLOAT, gl.GL_FALSE, stride, ctypes.c_void_p(4 * offset))
            offset += n
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, self._textures)
        for param, value in (
            (gl.GL_TEXTURE_WRAP_S, gl.GL_REPEAT),
            (gl.GL_TEXTURE_WRAP_T, gl.GL_REPEAT),
            (gl.GL_TEXTURE_MAG_FILTER, gl.GL_LINEAR),
            (gl.GL_TEXTURE_MIN_FILTER, gl.GL_LINEAR_MIPMAP_LINEAR),
        ):
            gl.glTexParameteri(gl.GL_TEXTURE_2D_ARRAY, param, value)
        gl.glPixelStorei(gl.GL_UNPACK_ALIGNMENT, 1)
        gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
        gl.glEnable(gl.GL_DEPTH_TEST)
        gl.glDepthFunc(gl.GL_LESS)
        gl.glDisable(gl.GL_CULL_FACE)  # every surface is double-sided
        gl.glViewport(0, 0, self.width, self.height)
        self._generation = 0

    def close(self) -> None:
        if self._context is None:
            return
        gl = self.gl
        self._context._platform.make_current()
        for fb in (self._id_fb, self._color_fb, self._msaa_fb):
            if fb is not None:
                fb.delete()
        gl.glDeleteBuffers(1, [self._vbo])
        gl.glDeleteVertexArrays(1, [self._vao])
        gl.glDeleteTextures([self._textures])
        gl.glDeleteProgram(self._id_program)
        gl.glDeleteProgram(self._color_program)
        self._context.delete()
        self._context = None

    # -- building ------------------------------------------------------------
    def build(self, scene: Scene, floor_size: float = 16.0) -> BuiltScene:
        """Upload ``scene``: vertex buffer and texture array (see module docstring). Surfaces are the
        objects, the walls, then the floor, each with its rigid pose baked into world coordinates
        (texture coordinates are computed in the object frame, so textures stick to the object).
        The renderer keeps one scene: building another makes this one's `BuiltScene` stale."""
        import trimesh

        h = floor_size / 2
        floor = trimesh.Trimesh([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
        # objects first: drawn before the floor and walls they hide, their pixels are shaded once
        surfaces = [
            (FIRST_OBJECT_ID + k, ob.mesh, ob.material, ob.pose, ob.smooth) for k, ob in enumerate(scene.objects)
        ]
        if scene.walls is not None:
            surfaces.append((WALL_ID, scene.walls, scene.wall_material, np.eye(4), False))
        surfaces.append((FLOOR_ID, floor, scene.floor_material, np.eye(4), False))
        blocks, normals, points, instances, textures = [], [], [], [], []
        for instance, mesh, material, pose, smooth in surfaces:
            layer = -1.0
            if material.texture is not None:
                layer = float(len(textures))
                textures.append(material.texture)
            block, face_normals, face_points = _surface_vertices(mesh, material, pose, smooth, layer)
            blocks.append(block)
            normals.append(face_normals)
            points.append(face_points)
            instances.append(np.full(len(face_normals), instance, np.uint16))
        vertices = np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)
        gl = self.gl
        self._context._platform.make_current()
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self._vbo)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, vertices.nbytes, vertices, gl.GL_STATIC_DRAW)
        self._upload_textures(textures)
        self._generation += 1
        return BuiltScene(
            generation=self._generation,
            vertices=len(vertices),
            lights=list(scene.lights),
            ambient=np.asarray(scene.ambient, np.float32),
            background=np.asarray(scene.background, np.float64),
            face_normals=np.concatenate(normals),
            face_points=np.concatenate(points),
            face_instance=np.concatenate(instances),
        )

    def _upload_textures(self, textures: list[np.ndarray]) -> None:
        """Every texture (uint8 [S, S, 3], row 0 at the top, sampled with v = 1 there) as one layer of
        the texture array, with its mipmaps (`mipmaps`: made here, as glGenerateMipmap costs a
        CPU rasterizer about 4 ms per scene)."""
        gl = self.gl
        if not textures:
            textures = [np.zeros((1, 1, 3), np.uint8)]  # an unused layer keeps the sampler complete
        shapes = {t.shape for t in textures}
        if len(shapes) != 1:
            raise ValueError(f"the textures of a scene must share one shape, got {sorted(shapes)}")
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, self._textures)
        levels = mipmaps(np.stack(textures)[:, ::-1])
        gl.glTexParameteri(gl.GL_TEXTURE_2D_ARRAY, gl.GL_TEXTURE_MAX_LEVEL, len(levels) - 1)
        for level, data in enumerate(levels):
            layers, h, w, _ = data.shape
            gl.glTexImage3D(
                gl.GL_TEXTURE_2D_ARRAY, level, gl.GL_RGB8, w, h, layers, 0, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, data
            )

    # -- passes ----------------------------------------------------------------
    def _begin(self, b: BuiltScene, view: CameraView, program: int, fb: _Framebuffer) -> np.ndarray:
        """Make the context current, bind ``fb`` and ``program``, set the camera; returns the view matrix."""
        if (view.height, view.width) != (self.height, self.width):
            raise ValueError(f"view size {view.height}x{view.width} != renderer size {self.height}x{self.width}")
        if b.generation != self._generation:
            raise RuntimeError("this BuiltScene is stale: its renderer has built another scene since")
        gl = self.gl
        self._context._platform.make_current()
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, fb.fb)
        gl.glUseProgram(program)
        gl.glBindVertexArray(self._vao)
        view_matrix = np.linalg.inv(np.asarray(view.cam_to_world, np.float64) @ CV_TO_GL)
        view_proj = projection(view) @ view_matrix
        gl.glUniformMatrix4fv(self._uniforms[program, "view_proj"], 1, gl.GL_TRUE, view_proj.astype(np.float32))
        return view_matrix

    def _read(self, attachment: int, fmt: int, kind: int, dtype, channels: int = 1) -> np.ndarray:
        gl = self.gl
        gl.glReadBuffer(gl.GL_COLOR_ATTACHMENT0 + attachment)
        buf = gl.glReadPixels(0, 0, self.width, self.height, fmt, kind)
        image = np.frombuffer(buf, dtype=dtype).reshape(self.height, self.width, channels)
        return image[::-1, :, 0] if channels == 1 else image[::-1]

    def render_geometry(self, b: BuiltScene, view: CameraView) -> GeometryMaps:
        """Id pass: exact depth, instance id and face (in the scene's buffer) at every pixel centre."""
        gl = self.gl
        view_matrix = self._begin(b, view, self._id_program, self._id_fb)
        gl.glUniformMatrix4fv(self._uniforms[self._id_program, "view"], 1, gl.GL_TRUE, view_matrix.astype(np.float32))
        gl.glClearBufferuiv(gl.GL_COLOR, 0, np.zeros(4, np.uint32))
        gl.glClearBufferfv(gl.GL_COLOR, 1, np.zeros(4, np.float32))
        gl.glClear(gl.GL_DEPTH_BUFFER_BIT)
        gl.glDrawArrays(gl.GL_TRIANGLES, 0, b.vertices)
        ids = self._read(0, gl.GL_RED_INTEGER, gl.GL_UNSIGNED_INT, np.uint32).astype(np.int64)
        depth = self._read(1, gl.GL_RED, gl.GL_FLOAT, np.float32)
        surface = ids > 0
        face = np.where(surface, ids - 1, 0)
        if np.any(face >= len(b.face_instance)):
            raise RuntimeError("id pass decoded a face index beyond the scene's buffer (corrupted id render)")
        instance = np.where(surface, b.face_instance[face], 0).astype(np.uint16)
        return GeometryMaps(depth=np.where(surface, depth, 0.0).astype(np.float32), instance=instance, face=face)

    def render_color(
        self, b: BuiltScene, view: CameraView, lights: list[Light] | None = None, contour: np.ndarray | None = None
    ) -> np.ndarray:
        """Colour pass: uint8 [H, W, 3]; ``lights`` (same length as the scene's) override intensities;
        ``contour`` is the view's contour map (of its `render_geometry` instance map), which ``edges``
        anti-aliasing needs."""
        if self.antialias == "edges" and contour is None:
            raise ValueError("render_color: edges anti-aliasing needs the view's contour map")
        gl, p = self.gl, self._color_program
        fb = self._msaa_fb if self.antialias == "msaa" else self._color_fb
        self._begin(b, view, p, fb)
        cam_pos = np.asarray(view.cam_to_world, np.float64)[:3, 3]
        gl.glUniform3f(self._uniforms[p, "cam_pos"], *cam_pos.tolist())
        gl.glUniform3f(self._uniforms[p, "ambient"], *b.ambient.tolist())
        self._set_lights(lights if lights is not None else b.lights)
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindTexture(gl.GL_TEXTURE_2D_ARRAY, self._textures)
        gl.glUniform1i(self._uniforms[p, "textures"], 0)
        gl.glClearColor(*b.background.tolist(), 1.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT | gl.GL_DEPTH_BUFFER_BIT)
        gl.glDrawArrays(gl.GL_TRIANGLES, 0, b.vertices)
        if fb is self._msaa_fb:
            gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, self._msaa_fb.fb)
            gl.glBindFramebuffer(gl.GL_DRAW_FRAMEBUFFER, self._color_fb.fb)
            w, h = self.width, self.height
            gl.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, gl.GL_COLOR_BUFFER_BIT, gl.GL_LINEAR)
            gl.glBindFramebuffer(gl.GL_READ_FRAMEBUFFER, self._color_fb.fb)
        color = np.ascontiguousarray(self._read(0, gl.GL_RGB, gl.GL_UNSIGNED_BYTE, np.uint8, 3))
        return smooth_edges(color, contour) if self.antialias == "edges" else color

    def _set_lights(self, lights: list[Light]) -> None:
        """The colour program's light uniforms (see `shaders.COLOR_FRAGMENT`)."""
        if len(lights) > shaders.MAX_LIGHTS:
            raise ValueError(f"a scene has {len(lights)} lights; the colour pass shades at most {shaders.MAX_LIGHTS}")
        gl, p = self.gl, self._color_program
        n = len(lights)
        kind = np.array([shaders.LIGHT_KINDS[light.kind] for light in lights], np.int32)
        color = np.array([np.asarray(light.color, np.float64) * light.intensity for light in lights], np.float32)
        pose = np.array([np.asarray(light.pose, np.float64) for light in lights])
        position = pose[:, :3, 3].astype(np.float32)
        direction = (-pose[:, :3, 2]).astype(np.float32)  # a light shines along its local -z
        cone = np.zeros((n, 2), np.float32)
        outer = np.cos(np.pi / 4)  # spot lights: inner cone 0, outer cone pi / 4
        cone[:, 0] = 1.0 / max(0.001, 1.0 - outer)
        cone[:, 1] = -outer * cone[:, 0]
        gl.glUniform1i(self._uniforms[p, "n_lights"], n)
        gl.glUniform1iv(self._uniforms[p, "light_kind"], n, kind)
        gl.glUniform3fv(self._uniforms[p, "light_color"], n, color)
        gl.glUniform3fv(self._uniforms[p, "light_position"], n, position)
        gl.glUniform3fv(self._uniforms[p, "light_direction"], n, direction)
        gl.glUniform2fv(self._uniforms[p, "light_cone"], n, cone)


def mipmaps(images: np.ndarray) -> list[np.ndarray]:
    """The mipmap chain of uint8 images [L, H, W, C]: level 0 is ``images``, each next level halves
    both sides (rounding down, at least 1) by area averaging, down to 1 x 1 (OpenGL's level sizes).
    The chain is averaged in float32 and each level rounded once, so deep levels keep the mean
    brightness of the image (rounding each level from the last drifts by up to half a grey level per
    level; Mesa's glGenerateMipmap drifts brighter by about 0.4 per level)."""
    base = np.asarray(images, dtype=np.uint8)
    chain = [base.astype(np.float32)]
    while max(chain[-1].shape[1:3]) > 1:
        _, h, w, c = chain[-1].shape
        size = (max(1, w // 2), max(1, h // 2))
        chain.append(
            np.stack([cv2.resize(img, size, interpolation=cv2.INTER_AREA) for img in chain[-1]]).reshape(
                -1, *size[::-1], c
            )
        )
    return [np.ascontiguousarray(base)] + [np.rint(level).astype(np.uint8) for level in chain[1:]]


def _surface_vertices(
    mesh, material: Material, pose: np.ndarray, smooth: bool, layer: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float32 [F*3, `shaders.VERTEX_LAYOUT`] vertices in world coordinates, float64 [F, 3] world
    face normals, float64 [F, 3] world first corners) of one surface: ``mesh`` in its object frame,
    placed by the rigid ``pose``."""
    R, t = np.asarray(pose, np.float64)[:3, :3], np.asarray(pose, np.float64)[:3, 3]
    local = unshared_positions(mesh)
    face_normals = np.asarray(mesh.face_normals, np.float64)
    out = np.empty((len(local), _FLOATS_PER_VERTEX), np.float32)
    out[:, 0:3] = local @ R.T.astype(np.float32) + t.astype(np.float32)
    out[:, 3:6] = shading_normals(mesh, smooth) @ R.T.astype(np.float32)
    out[:, 6:8] = triplanar_uv(local, face_normals, material.uv_scale)
    out[:, 8:11] = np.asarray(material.base_color, np.float32)
    out[:, 11], out[:, 12], out[:, 13] = material.metallic, material.roughness, layer
    corners = np.asarray(mesh.vertices, np.float64)[np.asarray(mesh.faces)[:, 0]]
    return out, face_normals @ R.T, corners @ R.T + t


def camera_normals(b: BuiltScene, g: GeometryMaps, view: CameraView) -> np.ndarray:
    """float32 [H, W, 3] unit face normals in the OpenCV camera frame, facing the camera; 0 = no surface.

    The camera sees a planar face from one side only, so each face's normal is turned towards the
    camera once per view (by the side of its plane the camera centre lies on), then looked up per pixel.
    """
    surface = g.instance > 0
    pose = np.asarray(view.cam_to_world, np.float64)
    away = np.einsum("fc,fc->f", b.face_normals, b.face_points - pose[:3, 3]) > 0
    table = np.where(away[:, None], -b.face_normals, b.face_normals) @ pose[:3, :3]  # R^T n for row vectors
    table /= np.maximum(np.linalg.norm(table, axis=-1, keepdims=True), 1e-12)
    n_cam = table[g.face]
    n_cam[~surface] = 0
    return n_cam.astype(np.float32)


__all__ = [
    "SceneRenderer",
    "BuiltScene",
    "GeometryMaps",
    "camera_normals",
    "projection",
    "mipmaps",
    "Z_NEAR",
    "Z_FAR",
    "ANTIALIAS_MODES",
    "MSAA_SAMPLES",
]
