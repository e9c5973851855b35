"""The render configuration: typed dataclasses loaded from YAML, overridable from the CLI.

Units: lengths in metres, angles in degrees, ranges are ``[low, high]`` (inclusive
for integer counts, half-open for floats). The world frame is z-up; the floor is
the plane z = 0. The defaults live here only (``render-scenes --print-config`` prints
them). Built and checked by `synthssl.core.config` (one engine for the package): unknown
keys, wrong types and values out of range raise :class:`ConfigError` naming the dotted key;
each section's ``check()`` holds its own rules.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from synthssl.core.config import ConfigError, apply_override, build, load_yaml, need

from .shaders import MAX_LIGHTS

SHIPPED_CONFIGS = Path(__file__).with_name("configs")
"""render configs shipped with the package, named without a path (``render-scenes NAME``)."""
PRIMITIVE_NAMES = ("box", "sphere", "cylinder", "capsule", "cone", "torus")
"""the shapes ``objects.primitives`` may name (`synthssl.render.shapes.PRIMITIVES` makes them)."""
PROCEDURAL_NAMES = ("hull", "extrusion", "superquadric", "lathe", "blob")
"""the generators ``objects.procedural`` may name (`synthssl.render.shapes.PROCEDURAL` holds them)."""
SEED_LIMIT = 2**63
"""seeds are whole numbers in [0, SEED_LIMIT): NumPy seeds from non-negative integers, and every
shard stores its seed as a signed 64-bit attribute."""


@dataclass
class ObjectsConfig:
    """What objects a scene holds."""

    count: tuple[int, int] = (3, 8)
    """objects per scene, inclusive range."""
    max_objects: int = 16
    """capacity of the per-scene object arrays of the shard (>= count[1], <= 252)."""
    source_weights: dict[str, float] = field(
        default_factory=lambda: {"primitive": 0.4, "procedural": 0.4, "asset": 0.2}
    )
    """relative frequency of each object source: primitive, procedural, asset."""
    primitives: list[str] = field(default_factory=lambda: list(PRIMITIVE_NAMES))
    """trimesh primitive shapes drawn from (source 'primitive')."""
    procedural: list[str] = field(default_factory=lambda: ["hull", "extrusion", "superquadric"])
    """procedural shape generators drawn from (source 'procedural'); also known: lathe, blob
    (docs/render.md)."""
    size: tuple[float, float] = (0.2, 0.55)
    """largest extent of an object in metres."""
    aspect: tuple[float, float] = (0.5, 1.0)
    """per-axis scale factor relative to the largest extent (non-uniform scale)."""
    asset_dirs: list[str] = field(default_factory=list)
    """folders of OBJ/GLB/PLY/STL meshes (searched recursively), besides the bundled assets/."""
    bundled_assets: bool = True
    """include the repository's assets/ folder."""
    pybullet_assets: bool = True
    """include pybullet_data's random_urdfs meshes when pybullet is installed."""
    max_faces: int = 20000
    """asset meshes with more faces are skipped (a bound on the memory and time one object costs)."""

    def check(self) -> None:
        need(1 <= self.count[0] <= self.count[1], "count", "1 <= low <= high")
        for key, names, known in (
            ("primitives", self.primitives, PRIMITIVE_NAMES),
            ("procedural", self.procedural, PROCEDURAL_NAMES),
        ):
            unknown = [n for n in names if n not in known]
            need(not unknown, key, f"names among {', '.join(known)}; got unknown {', '.join(map(repr, unknown))}")
        need(self.max_objects <= 252, "max_objects", "<= 252")
        need(
            all(w >= 0 for w in self.source_weights.values()) and sum(self.source_weights.values()) > 0,
            "source_weights",
            "non-negative weights with a positive sum",
        )
        need(
            set(self.source_weights) <= {"primitive", "procedural", "asset"},
            "source_weights",
            "keys among primitive, procedural, asset",
        )
        need(0 < self.size[0] <= self.size[1], "size", "0 < low <= high")
        need(0 < self.aspect[0] <= self.aspect[1] <= 1, "aspect", "0 < low <= high <= 1")
        need(1 <= self.max_faces <= 65536, "max_faces", "1..65536 (face ids are 16-bit)")


@dataclass
class PhysicsConfig:
    """Settling objects on the floor."""

    enabled: bool = True
    """place objects as they come to rest; off: random orientations, lowest point on the floor."""
    simulate: bool = False
    """false: each object on a stable face of its convex hull, apart from the others, computed without
    a simulation or pybullet (`render/resting.py`); true: a pybullet drop-and-settle (objects may lean
    on each other; pybullet missing: random orientations, as with ``enabled=false``)."""
    area: float = 1.2
    """objects are dropped / placed within a square of this side (metres) around the origin."""
    drop_height: tuple[float, float] = (0.02, 0.3)
    """height above the floor of an object's lowest point when dropped."""
    timestep: float = 0.008333333
    """seconds per simulation step (1/120)."""
    max_steps: int = 240
    """at most this many steps (2 s simulated); settling usually stops earlier."""
    rest_velocity: float = 0.05
    """an object is at rest below this linear (m/s) and angular (rad/s) speed."""
    check_every: int = 4
    """steps between rest checks."""

    @property
    def pybullet(self) -> bool:
        """Whether this placement runs pybullet (a drop-and-settle)."""
        return self.enabled and self.simulate

    def check(self) -> None:
        need(self.max_steps >= 0 and self.check_every >= 1, "max_steps/check_every", "max_steps >= 0, check_every >= 1")


#: How the colour pass can be anti-aliased (``appearance.antialias_by``).
ANTIALIAS_METHODS = ("msaa", "edges")


@dataclass
class AppearanceConfig:
    """Materials, textures, background and lights."""

    texture_weights: dict[str, float] = field(
        default_factory=lambda: {
            "plain": 0.1,
            "noise": 0.15,
            "stripes": 0.1,
            "checker": 0.1,
            "gradient": 0.1,
            "photo": 0.45,
        }
    )
    """share of each texture kind; photo crops on objects, floor and walls measurably help
    the real-photo probes (docs/quality.md)."""
    texture_size: int = 64
    """side of the square texture images (pixels)."""
    photo_dir: str | None = "/usr/share/backgrounds/mate"
    """folder of photos used as textures when texture_weights.photo > 0 (default: Debian's
    mate-backgrounds, installed by scripts/setup.sh)."""
    roughness: tuple[float, float] = (0.2, 1.0)
    """PBR roughness range of object materials."""
    metallic: tuple[float, float] = (0.0, 0.6)
    """PBR metallic range of object materials."""
    walls_probability: float = 0.5
    """probability that a scene has walls (a backdrop behind the objects)."""
    wall_distance: tuple[float, float] = (1.5, 3.0)
    """distance of the walls from the origin (metres)."""
    floor_size: float = 16.0
    """side of the square floor (metres)."""
    lights: tuple[int, int] = (1, 3)
    """lights per scene, inclusive range."""
    light_intensity: tuple[float, float] = (1.0, 3.0)
    """directional intensity (lux-like pyrender units); point/spot lights are scaled up."""
    ambient: tuple[float, float] = (0.15, 0.45)
    """ambient light range."""
    view_light_jitter: float = 0.0
    """per-view relative jitter of light intensities (0 = identical lighting in all views)."""
    antialias: bool = True
    """anti-alias the colour pass (geometry passes are always exact, single-sample)."""
    antialias_by: str = "edges"
    """how: ``edges`` (a single-sample pass, then a 3x3 filter of the pixels on instance boundaries:
    `render/edge_antialias.py`) or ``msaa`` (4x multisampling, about twice the colour pass's cost)."""

    @property
    def antialias_mode(self) -> str:
        """``msaa``, ``edges`` or ``none``: what the colour pass does."""
        return self.antialias_by if self.antialias else "none"

    def check(self) -> None:
        need(
            set(self.texture_weights) <= {"plain", "noise", "stripes", "checker", "gradient", "photo"},
            "texture_weights",
            "keys among plain, noise, stripes, checker, gradient, photo",
        )
        need(sum(self.texture_weights.values()) > 0, "texture_weights", "a positive sum")
        need(
            self.texture_weights.get("photo", 0) == 0 or (self.photo_dir is not None and Path(self.photo_dir).is_dir()),
            "photo_dir",
            f"a folder of photos when texture_weights.photo > 0, got {self.photo_dir!r} "
            "(install mate-backgrounds, give appearance.photo_dir=DIR, or set appearance.texture_weights.photo=0)",
        )
        need(1 <= self.lights[0] <= self.lights[1] <= MAX_LIGHTS, "lights", f"1 <= low <= high <= {MAX_LIGHTS}")
        need(
            self.antialias_by in ANTIALIAS_METHODS,
            "antialias_by",
            f"{' or '.join(ANTIALIAS_METHODS)}, got {self.antialias_by!r}",
        )


@dataclass
class CameraConfig:
    """View sampling: camera 0 looks at the scene, views 1.. at a controlled offset."""

    fov: tuple[float, float] = (40.0, 65.0)
    """horizontal field of view of each view (degrees)."""
    distance: tuple[float, float] = (1.0, 2.0)
    """camera-0 distance to the look-at point (metres)."""
    elevation: tuple[float, float] = (20.0, 60.0)
    """camera-0 elevation above the floor plane (degrees)."""
    look_at_jitter: float = 0.15
    """std (metres) of the look-at point around the objects' centre."""
    azimuth_offset: tuple[float, float] = (10.0, 45.0)
    """|azimuth| offset of view v from view 0 (degrees, random sign)."""
    elevation_offset: tuple[float, float] = (-10.0, 10.0)
    """elevation offset of view v from view 0 (degrees)."""
    distance_ratio: tuple[float, float] = (0.8, 1.25)
    """distance of view v over view 0's distance."""
    roll: tuple[float, float] = (-10.0, 10.0)
    """roll about the optical axis (degrees), every view."""
    min_elevation: float = 8.0
    """views are kept at or above this elevation (degrees)."""
    max_elevation: float = 80.0
    """views are kept at or below this elevation (degrees)."""
    overlap: tuple[float, float] = (0.3, 0.9)
    """accepted range of the overlap of view v with view 0; views are re-sampled until inside."""
    max_tries: int = 8
    """re-sampling attempts; the best (closest to the range) is kept after that."""

    def check(self) -> None:
        need(0 < self.fov[0] <= self.fov[1] < 170, "fov", "0 < low <= high < 170 degrees")
        need(0 <= self.overlap[0] <= self.overlap[1] <= 1, "overlap", "0 <= low <= high <= 1")
        need(self.max_tries >= 1, "max_tries", ">= 1")


@dataclass
class RenderConfig:
    """Everything `render-scenes` needs (keys: ``render-scenes --help``)."""

    out: str | None = None
    """output folder of shard-*.h5, manifest.json and identity.json (required)."""
    scenes: int = 16
    """scenes to render in all (each with ``views`` views)."""
    size: int = 128
    """image height and width (pixels)."""
    views: int = 2
    """views (cameras) per scene."""
    seed: int = 0
    """render seed: scene i of seed s is the same whatever the workers, shard size or machine."""
    workers: int = 1
    """rendering processes (each with its own GL context)."""
    shard_size: int = 64
    """scenes per shard file."""
    compression: str = "gzip"
    """'gzip' (deflate + shuffle, level 1; any HDF5 reader decodes it) | 'gzip:N' | 'lzf' (h5py only) | 'none'."""
    backend: str = "auto"
    """'auto' | 'egl' | 'osmesa'."""
    shard_index: int = 0
    """this job's index among num_shards array jobs."""
    num_shards: int = 1
    """this job renders shards i with i % num_shards == shard_index (cluster array jobs)."""
    objects: ObjectsConfig = field(default_factory=ObjectsConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)

    def check(self) -> None:
        need(self.scenes >= 0, "scenes", ">= 0")
        need(0 <= self.seed < SEED_LIMIT, "seed", f"a whole number in 0..2**63-1, got {self.seed}")
        need(8 <= self.size <= 4096, "size", "8..4096 pixels")
        need(self.views >= 2, "views", ">= 2 (each scene is rendered as a pair of views, or more)")
        need(self.workers >= 1, "workers", ">= 1")
        need(self.shard_size >= 1, "shard_size", ">= 1")
        need(self.backend in ("auto", "egl", "osmesa"), "backend", "'auto', 'egl' or 'osmesa'")
        need(
            self.compression in ("lzf", "gzip", "none")
            or (
                self.compression.startswith("gzip:")
                and self.compression[5:].isdigit()
                and int(self.compression[5:]) <= 9
            ),
            "compression",
            "'lzf', 'gzip', 'gzip:0'..'gzip:9' or 'none'",
        )
        need(
            self.num_shards >= 1 and 0 <= self.shard_index < self.num_shards,
            "shard_index/num_shards",
            "0 <= shard_index < num_shards",
        )
        need(self.objects.count[1] <= self.objects.max_objects, "objects.max_objects", ">= objects.count[1]")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_dict(data: dict | None) -> RenderConfig:
    """A checked RenderConfig from a (partial) nested dict; keys not given keep their defaults."""
    return build(RenderConfig, dict(data or {}))


def load_config(path: str | Path | None = None, overrides: Sequence[str] | dict | None = None) -> RenderConfig:
    """The defaults, overridden by the YAML file ``path`` (a path or a shipped config name, with its
    ``base:`` files) and then by ``overrides`` (``["key=value", ...]``, values parsed as YAML, or a
    ``{dotted key: value}`` dict); checked. Errors are ConfigError naming the key."""
    tree = load_yaml(path, SHIPPED_CONFIGS) if path is not None else {}
    if isinstance(overrides, dict):
        overrides = [f"{k}={json.dumps(v)}" for k, v in overrides.items()]  # JSON is YAML
    for item in overrides or ():
        apply_override(tree, item)
    try:
        return config_from_dict(tree)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc} (config: {path or 'the defaults'}{' with ' + ' '.join(overrides) if overrides else ''})"
        ) from None


__all__ = [
    "RenderConfig",
    "ObjectsConfig",
    "PhysicsConfig",
    "AppearanceConfig",
    "CameraConfig",
    "ConfigError",
    "load_config",
    "config_from_dict",
    "SHIPPED_CONFIGS",
    "PRIMITIVE_NAMES",
    "PROCEDURAL_NAMES",
    "SEED_LIMIT",
]
