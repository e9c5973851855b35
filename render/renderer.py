"""pyrender offscreen rendering of a :class:`~synthssl.render.scene.Scene` into exact maps.

One :class:`SceneRenderer` per process (one GL context), reused across scenes. Each
scene becomes one pyrender scene holding two mesh sets, toggled per pass:

* **id pass** (flat, unlit, single-sample): instance id and face index per pixel
  (see :mod:`mesh_buffers`), and the depth buffer. Every surface of the scene is one
  primitive of one mesh here (one buffer to upload, one draw per pass). pyrender returns linear
  z-depth in metres (0 where nothing is hit). Normals are the *geometric* face
  normals of the mesh looked up by face index (rotated into the camera frame and
  turned towards the camera), so they are exact, never finite differences.
* **colour pass** (PBR-lit, textured), anti-aliased by ``antialias``: ``msaa`` (4x multisampling),
  ``edges`` (single-sample, then the contour pixels filtered: :mod:`edge_antialias`) or ``none``.

Camera conversion: the shard's OpenCV camera (x right, y down, z forward; pixel
centres at integer coordinates) becomes pyrender's OpenGL camera (x right, y up,
z backward) with ``pose_gl = cam_to_world @ diag(1, -1, -1, 1)`` and principal point
``(cx + 0.5, cy + 0.5)``: GL puts pixel centres at half-integers (derivation: the GL
window coordinate of a point is ``fx X/Z + cx_gl`` for columns, row ``r`` spans
window y in [H-1-r, H-r], so both axes shift by exactly one half pixel).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from synthssl.dataset.schema import FIRST_OBJECT_ID, FLOOR_ID, WALL_ID

from . import gl_compat
from .appearance import Light, Material
from .cameras import CV_TO_GL, CameraView
from .config import ANTIALIAS_METHODS
from .edge_antialias import smooth_edges
from .mesh_buffers import decode_ids, id_colors, shading_normals, triplanar_uv, unshared_positions
from .scene import Scene

Z_NEAR = 0.03
Z_FAR = 200.0
#: What `SceneRenderer` can anti-alias the colour pass by (``appearance.antialias_mode``).
ANTIALIAS_MODES = (*ANTIALIAS_METHODS, "none")


@dataclass
class GeometryMaps:
    """Exact per-pixel geometry of one view (OpenCV camera frame)."""

    depth: np.ndarray
    """float32 [H, W] metres, 0 = no surface."""
    instance: np.ndarray
    """uint16 [H, W] (0 background, 1 floor, 2 wall, 3+k object k)."""
    face: np.ndarray
    """int64 [H, W] face index within the instance's mesh."""


@dataclass
class BuiltScene:
    """A Scene turned into pyrender objects plus the lookup tables for the maps."""

    pr_scene: object
    camera_node: object
    color_meshes: list
    id_meshes: list
    light_nodes: list
    lights: list[Light]
    face_normals: np.ndarray
    """float64 [total faces, 3] world-frame unit face normals of every instance, concatenated."""
    face_offset: np.ndarray
    """int64 [256]: start of each instance's faces in ``face_normals`` (-1: no such instance)."""
    face_count: np.ndarray
    """int64 [256]: number of faces per instance."""
    background: np.ndarray
    """RGBA in [0, 1] of the colour pass's empty pixels."""


def _rigid_rotation(pose: np.ndarray) -> np.ndarray:
    return np.asarray(pose, np.float64)[:3, :3]


class SceneRenderer:
    """Offscreen renderer for scenes of one image size; see module docstring. ``antialias`` is one of
    `ANTIALIAS_MODES` (a render passes its ``appearance.antialias_mode``; ``edges`` needs each view's
    contour map in `render_color`)."""

    def __init__(self, height: int, width: int, backend: str = "auto", antialias: str = "msaa"):
        if antialias not in ANTIALIAS_MODES:
            raise ValueError(f"antialias: one of {', '.join(ANTIALIAS_MODES)}, got {antialias!r}")
        self.backend = gl_compat.use_backend(backend)
        self.pr = gl_compat.import_pyrender()
        self.height, self.width = int(height), int(width)
        self.antialias = antialias
        self._r = self.pr.OffscreenRenderer(self.width, self.height)
        gl_compat.keep_triton_out()  # llvmpipe's LLVM is loaded now: torch must not load triton's
        # id pass: white, unlit (FLAT), double-sided, so the output is exactly the vertex colour
        self._id_material = self.pr.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0], doubleSided=True)

    def close(self) -> None:
        if self._r is not None:
            self._r.delete()
            self._r = None

    # -- building ------------------------------------------------------------
    def _material(self, m: Material):
        pr = self.pr
        tex = None
        if m.texture is not None:
            tex = pr.Texture(
                source=m.texture, source_channels="RGB", sampler=pr.Sampler(wrapS=pr.GLTF.REPEAT, wrapT=pr.GLTF.REPEAT)
            )
        return pr.MetallicRoughnessMaterial(
            baseColorFactor=[*np.asarray(m.base_color, float).tolist(), 1.0],
            metallicFactor=m.metallic,
            roughnessFactor=m.roughness,
            baseColorTexture=tex,
            doubleSided=True,
        )

    def _add_surface(
        self, pr_scene, mesh, instance: int, material: Material, pose: np.ndarray, smooth: bool, built: dict
    ) -> None:
        """Add the colour mesh of one surface (``mesh`` in its object frame, rigid world ``pose``) and
        collect its id-pass vertices.

        Vertices are baked into world coordinates (nodes get no matrix: pyrender's
        per-node matrix decomposition is slow); texture coordinates are computed in
        the object frame so textures stick to the object.
        """
        pr = self.pr
        R, t = _rigid_rotation(pose), np.asarray(pose, np.float64)[:3, 3]
        local = unshared_positions(mesh)
        face_normals = np.asarray(mesh.face_normals, np.float64)
        uv = triplanar_uv(local, face_normals, material.uv_scale)
        pos = np.ascontiguousarray(local @ R.T.astype(np.float32) + t.astype(np.float32), dtype=np.float32)
        normals = np.ascontiguousarray(shading_normals(mesh, smooth) @ R.T.astype(np.float32), dtype=np.float32)
        color_prim = pr.Primitive(
            positions=pos, normals=normals, texcoord_0=uv, material=self._material(material), mode=pr.GLTF.TRIANGLES
        )
        cm = pr.Mesh([color_prim])
        pr_scene.add(cm)
        built["color"].append(cm)
        built["id_positions"].append(pos)
        built["id_colors"].append(id_colors(instance, len(mesh.faces)))
        built["normals"][instance] = face_normals @ R.T

    def build(self, scene: Scene, floor_size: float = 16.0) -> BuiltScene:
        """Create the pyrender scene (both mesh sets, lights, camera) of ``scene``."""
        import trimesh

        pr = self.pr
        prs = pr.Scene(
            bg_color=[*np.asarray(scene.background, float).tolist(), 1.0],
            ambient_light=np.asarray(scene.ambient, float).tolist(),
        )
        built: dict = {"color": [], "id_positions": [], "id_colors": [], "normals": {}}
        h = floor_size / 2
        floor = trimesh.Trimesh([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
        self._add_surface(prs, floor, FLOOR_ID, scene.floor_material, np.eye(4), False, built)
        if scene.walls is not None:
            self._add_surface(prs, scene.walls, WALL_ID, scene.wall_material, np.eye(4), False, built)
        for k, ob in enumerate(scene.objects):
            self._add_surface(prs, ob.mesh, FIRST_OBJECT_ID + k, ob.material, ob.pose, ob.smooth, built)
        id_mesh = pr.Mesh(
            [
                pr.Primitive(
                    positions=np.concatenate(built["id_positions"]),
                    color_0=np.concatenate(built["id_colors"]),
                    material=self._id_material,
                    mode=pr.GLTF.TRIANGLES,
                )
            ]
        )
        prs.add(id_mesh)
        light_nodes = []
        for light in scene.lights:
            cls = {"directional": pr.DirectionalLight, "point": pr.PointLight, "spot": pr.SpotLight}[light.kind]
            kwargs = {"outerConeAngle": np.pi / 4} if light.kind == "spot" else {}
            light_nodes.append(
                prs.add(
                    cls(color=np.asarray(light.color).tolist(), intensity=light.intensity, **kwargs), pose=light.pose
                )
            )
        cam = pr.IntrinsicsCamera(fx=1.0, fy=1.0, cx=0.0, cy=0.0, znear=Z_NEAR, zfar=Z_FAR)
        cam_node = prs.add(cam, pose=np.eye(4))
        offset = np.full(256, -1, np.int64)
        count = np.zeros(256, np.int64)
        tables, start = [], 0
        for inst in sorted(built["normals"]):
            n = built["normals"][inst]
            offset[inst], count[inst] = start, len(n)
            tables.append(n)
            start += len(n)
        return BuiltScene(
            prs,
            cam_node,
            built["color"],
            [id_mesh],
            light_nodes,
            list(scene.lights),
            np.concatenate(tables),
            offset,
            count,
            np.array([*np.asarray(scene.background, float), 1.0]),
        )

    # -- passes ----------------------------------------------------------------
    def _set_camera(self, b: BuiltScene, view: CameraView) -> None:
        if (view.height, view.width) != (self.height, self.width):
            raise ValueError(f"view size {view.height}x{view.width} != renderer size {self.height}x{self.width}")
        cam = b.camera_node.camera
        K = view.K
        cam.fx, cam.fy, cam.cx, cam.cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]) + 0.5, float(K[1, 2]) + 0.5
        b.pr_scene.set_pose(b.camera_node, np.asarray(view.cam_to_world, np.float64) @ CV_TO_GL)

    def _show(self, b: BuiltScene, ids: bool) -> None:
        """Show one mesh set; the id pass needs a black background (instance 0)."""
        b.pr_scene.bg_color = np.array([0.0, 0.0, 0.0, 1.0]) if ids else b.background
        for m in b.id_meshes:
            m.is_visible = ids
        for m in b.color_meshes:
            m.is_visible = not ids

    def render_geometry(self, b: BuiltScene, view: CameraView) -> GeometryMaps:
        """Id pass: exact depth, instance and face index at every pixel centre."""
        pr = self.pr
        self._set_camera(b, view)
        self._show(b, ids=True)
        gl_compat.set_msaa_samples(self._r, 0)
        gl_compat.set_color_only(self._r, False)
        color, depth = self._r.render(b.pr_scene, flags=pr.RenderFlags.FLAT)
        instance, face = decode_ids(color)
        surface = instance > 0
        depth = np.where(surface, depth, 0.0).astype(np.float32)
        return GeometryMaps(depth=depth, instance=instance, face=np.where(surface, face, 0))

    def render_color(
        self, b: BuiltScene, view: CameraView, lights: list[Light] | None = None, contour: np.ndarray | None = None
    ) -> np.ndarray:
        """Colour pass: uint8 [H, W, 3]; ``lights`` (same length as the scene's) override intensities;
        ``contour`` is the view's contour map (of its `render_geometry` instance map), which ``edges``
        anti-aliasing needs."""
        if self.antialias == "edges" and contour is None:
            raise ValueError("render_color: edges anti-aliasing needs the view's contour map")
        pr = self.pr
        self._set_camera(b, view)
        self._show(b, ids=False)
        for node, light in zip(b.light_nodes, lights if lights is not None else b.lights):
            node.light.intensity = light.intensity
        gl_compat.set_msaa_samples(self._r, 4 if self.antialias == "msaa" else 0)
        gl_compat.set_color_only(self._r, True)  # the id pass gives the depth
        color, _ = self._r.render(b.pr_scene, flags=pr.RenderFlags.NONE)
        color = np.ascontiguousarray(color[..., :3])
        return smooth_edges(color, contour) if self.antialias == "edges" else color


def camera_normals(b: BuiltScene, g: GeometryMaps, view: CameraView) -> np.ndarray:
    """float32 [H, W, 3] unit face normals in the OpenCV camera frame, facing the camera; 0 = no surface."""
    surface = g.instance > 0
    inst = g.instance.astype(np.int64)
    if np.any(g.face[surface] >= b.face_count[inst[surface]]):
        raise RuntimeError("id pass decoded a face index beyond its mesh (corrupted id render)")
    idx = np.where(surface, b.face_offset[inst] + g.face, 0)
    R = np.asarray(view.cam_to_world, np.float64)[:3, :3]
    n_cam = b.face_normals[idx] @ R  # R^T n for row vectors
    rays = _pixel_grid(*g.depth.shape) @ np.linalg.inv(view.K).T
    sign = np.where(np.einsum("hwc,hwc->hw", n_cam, rays) > 0, -1.0, 1.0)  # towards the camera
    n_cam /= np.maximum(np.linalg.norm(n_cam, axis=-1, keepdims=True), 1e-12)
    n_cam *= sign[..., None]
    n_cam[~surface] = 0
    return n_cam.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _pixel_grid(h: int, w: int) -> np.ndarray:
    """float64 [h, w, 3]: (u, v, 1) of every pixel centre (read-only, shared)."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    grid = np.stack([u, v, np.ones_like(u)], -1)
    grid.setflags(write=False)
    return grid


__all__ = ["SceneRenderer", "BuiltScene", "GeometryMaps", "camera_normals", "Z_NEAR", "Z_FAR"]
