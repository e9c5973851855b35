"""The scene description (Kubric-like: plain data, no GL) and its random sampling.

A scene is drawn from ``np.random.default_rng([seed, scene_index])`` only, so scene i
of seed s is the same whatever the workers, shard size or machine. World frame: z up,
floor = plane z = 0 (instance 1), walls/backdrop (instance 2), object k -> instance 3+k.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import trimesh

from synthssl.dataset.schema import FIRST_OBJECT_ID, RESERVED_CATEGORY_NAMES

from . import shapes
from .appearance import Light, Material, sample_lights, sample_material
from .asset_cache import AssetSet, open_asset_set
from .assets import AssetEntry, discover_assets
from .cameras import Orbit, sample_base_orbit
from .config import RenderConfig
from .physics import PhysicsWorld, place_resting, place_without_physics
from .resting import shared_hull_faces
from .textures import random_color


@dataclass
class SceneObject:
    """An object: ``mesh`` in its object frame (scaled, metres), rigid ``pose`` object-to-world."""

    mesh: trimesh.Trimesh
    category: str
    source: str
    scale: np.ndarray
    pose: np.ndarray
    material: Material
    smooth: bool


@dataclass
class Scene:
    """Everything the renderer needs for one scene (world frame, metres)."""

    index: int
    objects: list[SceneObject]
    floor_material: Material
    walls: trimesh.Trimesh | None
    wall_material: Material | None
    lights: list[Light]
    ambient: np.ndarray
    background: np.ndarray
    """RGB in [0, 1] of pixels without a surface (colour pass only)."""
    base_orbit: Orbit
    center: np.ndarray
    physics_steps: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def objects_json(self, category_ids: dict[str, int]) -> str:
        """Per-object JSON (source, category name/id, instance, pose, scale) for the shard."""
        return json.dumps(
            [
                {
                    "instance": FIRST_OBJECT_ID + k,
                    "source": o.source,
                    "category": o.category,
                    "category_id": category_ids[o.category],
                    "pose": np.round(o.pose, 6).tolist(),
                    "scale": np.round(o.scale, 6).tolist(),
                    "material": o.material.texture_kind,
                }
                for k, o in enumerate(self.objects)
            ]
        )


def drawn_assets(cfg: RenderConfig) -> list[AssetEntry]:
    """The asset meshes ``cfg`` draws objects from (`assets.discover_assets`): none when the asset
    source has no weight."""
    o = cfg.objects
    if o.source_weights.get("asset", 0) <= 0:
        return []
    return discover_assets(o.asset_dirs, o.bundled_assets, o.pybullet_assets)


class SceneSampler:
    """Draws scenes for one RenderConfig; holds the asset list and the category table.

    ``category_names``: background, floor, wall, then the enabled primitive and
    procedural families and the asset classes, sorted; ids are list indices and do
    not depend on which scenes a shard holds.
    """

    def __init__(self, cfg: RenderConfig, physics: PhysicsWorld | None = None):
        self.cfg = cfg
        o = cfg.objects
        for name in o.primitives:
            if name not in shapes.PRIMITIVES:
                raise ValueError(f"objects.primitives: unknown primitive {name!r} (known: {sorted(shapes.PRIMITIVES)})")
        for name in o.procedural:
            if name not in shapes.PROCEDURAL:
                raise ValueError(f"objects.procedural: unknown shape {name!r} (known: {sorted(shapes.PROCEDURAL)})")
        self.assets = drawn_assets(cfg)
        weights = {
            "primitive": o.source_weights.get("primitive", 0) if o.primitives else 0,
            "procedural": o.source_weights.get("procedural", 0) if o.procedural else 0,
            "asset": o.source_weights.get("asset", 0) if self.assets else 0,
        }
        if sum(weights.values()) <= 0:
            raise ValueError(
                "objects: no object source is available (check source_weights, primitives, "
                "procedural and asset folders)"
            )
        self.sources = sorted(k for k, w in weights.items() if w > 0)
        p = np.array([weights[k] for k in self.sources])
        self.source_p = p / p.sum()
        classes = sorted({*o.primitives, *o.procedural, *(a.category for a in self.assets)})
        self.category_names: list[str] = list(RESERVED_CATEGORY_NAMES) + classes
        self.category_ids = {n: i for i, n in enumerate(self.category_names)}
        self.physics = physics
        self._asset_set: AssetSet | None = None

    # -- objects -----------------------------------------------------------
    def _asset_meshes(self) -> AssetSet:
        """The parsed meshes of ``self.assets`` (`asset_cache.open_asset_set`), opened at the first draw."""
        if self._asset_set is None:
            self._asset_set = open_asset_set(tuple(a.path for a in self.assets), self.cfg.objects.max_faces)
        return self._asset_set

    def _shape(self, rng: np.random.Generator) -> tuple[trimesh.Trimesh, str, str, bool, bool]:
        """(unit-size mesh, category, source, smooth, shared): ``shared`` when the mesh is one object
        drawn again and again (an asset, a fixed primitive), so its hull faces are kept."""
        o = self.cfg.objects
        source = self.sources[int(rng.choice(len(self.sources), p=self.source_p))]
        if source == "asset":
            for _ in range(8):
                j = int(rng.integers(len(self.assets)))
                entry, mesh = self.assets[j], self._asset_meshes().mesh(j)
                if mesh is not None:
                    return mesh, entry.category, f"asset:{entry.source}:{entry.name}", True, True
            source = "primitive" if o.primitives else "procedural"
        table = shapes.PRIMITIVES if source == "primitive" else shapes.PROCEDURAL
        names = o.primitives if source == "primitive" else o.procedural
        name = names[int(rng.integers(len(names)))]
        smooth = name in ("sphere", "capsule", "torus", "superquadric", "cylinder", "cone")
        return table[name](rng), name, f"{source}:{name}", smooth, name in shapes.SHARED_SHAPES

    def _object_meshes(self, rng: np.random.Generator):
        o = self.cfg.objects
        out = []
        for _ in range(int(rng.integers(o.count[0], o.count[1] + 1))):
            base, category, source, smooth, shared = self._shape(rng)
            scale = rng.uniform(*o.size) * rng.uniform(*o.aspect, size=3)
            mesh = trimesh.Trimesh(base.vertices * scale, base.faces, process=False)
            out.append((mesh, category, source, scale, smooth, base if shared else None))
        return out

    # -- the scene ---------------------------------------------------------
    def sample(self, seed: int, index: int) -> Scene:
        """Scene ``index`` of ``seed``: objects placed (settled, resting or random), materials, lights, walls,
        view-0 orbit."""
        cfg = self.cfg
        rng = np.random.default_rng([int(seed), int(index)])
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        items = self._object_meshes(rng)
        meshes = [m for m, *_ in items]
        t1 = time.perf_counter()
        if cfg.physics.enabled and not cfg.physics.simulate:
            hulls = [None if base is None else shared_hull_faces(base) for *_, base in items]
            poses, steps = place_resting(meshes, rng, cfg.physics, hulls), 0
        elif cfg.physics.enabled and self.physics is not None:
            poses, steps = self.physics.settle(meshes, rng, cfg.physics)
        else:
            poses, steps = place_without_physics(meshes, rng, cfg.physics), 0
        t2 = time.perf_counter()
        a = cfg.appearance
        objects = [
            SceneObject(mesh, cat, src, scale, pose, sample_material(rng, a, uv_scale=0.25), smooth)
            for (mesh, cat, src, scale, smooth, _), pose in zip(items, poses)
        ]
        centers = np.array([ob.pose[:3, 3] for ob in objects])
        center = np.median(centers, axis=0)
        center[2] = 0.5 * float(np.median(centers[:, 2])) + 0.05
        base = sample_base_orbit(rng, cfg.camera, center)
        floor_material = sample_material(rng, a, uv_scale=float(rng.uniform(0.3, 1.2)))
        walls, wall_material = None, None
        if rng.uniform() < a.walls_probability:
            walls = backdrop_mesh(rng, base.azimuth, float(rng.uniform(*a.wall_distance)), center)
            wall_material = sample_material(rng, a, uv_scale=float(rng.uniform(0.4, 1.5)))
        lights, ambient = sample_lights(rng, a, center)
        background = random_color(rng)
        timings.update(build=t1 - t0 + time.perf_counter() - t2, physics=t2 - t1)
        return Scene(
            index=int(index),
            objects=objects,
            floor_material=floor_material,
            walls=walls,
            wall_material=wall_material,
            lights=lights,
            ambient=ambient,
            background=background,
            base_orbit=base,
            center=center,
            physics_steps=steps,
            timings=timings,
        )


def backdrop_mesh(
    rng: np.random.Generator, camera_azimuth: float, distance: float, center: np.ndarray
) -> trimesh.Trimesh:
    """One backdrop wall, or a corner of two walls, behind the scene as seen from ``camera_azimuth``.

    Walls are vertical quads (3 m high) facing the scene; they stand opposite the
    view-0 camera so that views within +-90 degrees of azimuth see them from the front.
    """
    behind = camera_azimuth + 180.0
    azimuths = [behind] if rng.uniform() < 0.5 else [behind - 45.0, behind + 45.0]
    verts, faces = [], []
    for az in azimuths:
        a = np.deg2rad(az)
        n = np.array([np.cos(a), np.sin(a), 0.0])  # outward direction from the centre
        t = np.array([-n[1], n[0], 0.0])
        c = np.array([center[0], center[1], 0.0]) + distance * n
        half = distance * 1.6
        base = len(verts)
        verts += [c - half * t, c + half * t, c + half * t + [0, 0, 3.0], c - half * t + [0, 0, 3.0]]
        faces += [[base, base + 2, base + 1], [base, base + 3, base + 2]]  # wound to face the centre
    return trimesh.Trimesh(np.array(verts), np.array(faces), process=False)


__all__ = ["Scene", "SceneObject", "SceneSampler", "backdrop_mesh", "drawn_assets"]
