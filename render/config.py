"""The render configuration: typed dataclasses loaded from YAML, overridable from the CLI.

Units: lengths in metres, angles in degrees, ranges are ``[low, high]`` (inclusive
for integer counts, half-open for floats). The world frame is z-up; the floor is
the plane z = 0. Unknown keys and wrong types raise :class:`ConfigError` naming the
dotted key. ``render/configs/default.yaml`` holds the defaults below.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synthssl.dataset.yaml_numbers import safe_load

DEFAULT_CONFIG_PATH = Path(__file__).with_name("configs") / "default.yaml"


class ConfigError(ValueError):
    """A render config value is missing, unknown or of the wrong type."""


@dataclass
class ObjectsConfig:
    """What objects a scene holds."""

    count: tuple[int, int] = (3, 8)
    """objects per scene, inclusive range."""
    max_objects: int = 16
    """capacity of the per-scene object arrays of the shard (>= count[1], <= 252)."""
    source_weights: dict[str, float] = field(default_factory=lambda: {"primitive": 0.4, "procedural": 0.4, "asset": 0.2})
    """relative frequency of each object source: primitive, procedural, asset."""
    primitives: list[str] = field(default_factory=lambda: ["box", "sphere", "cylinder", "capsule", "cone", "torus"])
    procedural: list[str] = field(default_factory=lambda: ["hull", "extrusion", "superquadric"])
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
    """asset meshes with more faces are skipped (face ids are encoded in 16 bits)."""


@dataclass
class PhysicsConfig:
    """Settling objects on the floor."""

    enabled: bool = True
    """drop objects with pybullet; off (or pybullet missing): random non-overlapping placement."""
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


@dataclass
class AppearanceConfig:
    """Materials, textures, background and lights."""

    texture_weights: dict[str, float] = field(default_factory=lambda: {
        "plain": 0.1, "noise": 0.15, "stripes": 0.1, "checker": 0.1, "gradient": 0.1, "photo": 0.45})
    """share of each texture kind; photo crops on objects, floor and walls measurably help
    the real-photo probes (docs/quality.md)."""
    texture_size: int = 64
    photo_dir: str | None = "/usr/share/backgrounds/mate"
    """folder of photos used as textures when texture_weights.photo > 0 (default: Debian's
    mate-backgrounds, installed by scripts/setup.sh)."""
    roughness: tuple[float, float] = (0.2, 1.0)
    metallic: tuple[float, float] = (0.0, 0.6)
    walls_probability: float = 0.5
    """probability that a scene has walls (a backdrop behind the objects)."""
    wall_distance: tuple[float, float] = (1.5, 3.0)
    floor_size: float = 16.0
    lights: tuple[int, int] = (1, 3)
    light_intensity: tuple[float, float] = (1.0, 3.0)
    """directional intensity (lux-like pyrender units); point/spot lights are scaled up."""
    ambient: tuple[float, float] = (0.15, 0.45)
    view_light_jitter: float = 0.0
    """per-view relative jitter of light intensities (0 = identical lighting in all views)."""
    antialias: bool = True
    """4x MSAA for the colour pass (geometry passes are always exact, single-sample)."""


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
    distance_ratio: tuple[float, float] = (0.8, 1.25)
    roll: tuple[float, float] = (-10.0, 10.0)
    """roll about the optical axis (degrees), every view."""
    min_elevation: float = 8.0
    max_elevation: float = 80.0
    overlap: tuple[float, float] = (0.3, 0.9)
    """accepted range of the overlap of view v with view 0; views are re-sampled until inside."""
    max_tries: int = 8
    """re-sampling attempts; the best (closest to the range) is kept after that."""


@dataclass
class RenderConfig:
    """Everything `render-scenes` needs; see render/configs/default.yaml."""

    out: str | None = None
    scenes: int = 16
    size: int = 128
    """image height and width (pixels)."""
    views: int = 2
    seed: int = 0
    workers: int = 1
    shard_size: int = 64
    compression: str = "gzip"
    """'gzip' (deflate + shuffle, level 1; any HDF5 reader decodes it) | 'gzip:N' | 'lzf' (h5py only) | 'none'."""
    backend: str = "auto"
    """'auto' | 'egl' | 'osmesa'."""
    shard_index: int = 0
    num_shards: int = 1
    """this job renders shards i with i % num_shards == shard_index (cluster array jobs)."""
    objects: ObjectsConfig = field(default_factory=ObjectsConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)

    def validate(self) -> "RenderConfig":
        """Check ranges and relations; raise ConfigError naming the key."""
        def need(cond: bool, key: str, what: str) -> None:
            if not cond:
                raise ConfigError(f"render config: {key}: expected {what}")

        need(self.scenes >= 0, "scenes", ">= 0")
        need(8 <= self.size <= 4096, "size", "8..4096 pixels")
        need(self.views >= 2, "views", ">= 2 (each scene is rendered as a pair of views, or more)")
        need(self.workers >= 1, "workers", ">= 1")
        need(self.shard_size >= 1, "shard_size", ">= 1")
        need(self.backend in ("auto", "egl", "osmesa"), "backend", "'auto', 'egl' or 'osmesa'")
        need(self.compression in ("lzf", "gzip", "none") or (self.compression.startswith("gzip:")
             and self.compression[5:].isdigit() and int(self.compression[5:]) <= 9),
             "compression", "'lzf', 'gzip', 'gzip:0'..'gzip:9' or 'none'")
        need(self.num_shards >= 1 and 0 <= self.shard_index < self.num_shards,
             "shard_index/num_shards", "0 <= shard_index < num_shards")
        o = self.objects
        need(1 <= o.count[0] <= o.count[1], "objects.count", "1 <= low <= high")
        need(o.count[1] <= o.max_objects <= 252, "objects.max_objects", ">= objects.count[1] and <= 252")
        need(all(w >= 0 for w in o.source_weights.values()) and sum(o.source_weights.values()) > 0,
             "objects.source_weights", "non-negative weights with a positive sum")
        need(set(o.source_weights) <= {"primitive", "procedural", "asset"}, "objects.source_weights",
             "keys among primitive, procedural, asset")
        need(0 < o.size[0] <= o.size[1], "objects.size", "0 < low <= high")
        need(0 < o.aspect[0] <= o.aspect[1] <= 1, "objects.aspect", "0 < low <= high <= 1")
        need(1 <= o.max_faces <= 65536, "objects.max_faces", "1..65536 (face ids are 16-bit)")
        a = self.appearance
        need(set(a.texture_weights) <= {"plain", "noise", "stripes", "checker", "gradient", "photo"},
             "appearance.texture_weights", "keys among plain, noise, stripes, checker, gradient, photo")
        need(sum(a.texture_weights.values()) > 0, "appearance.texture_weights", "a positive sum")
        need(a.texture_weights.get("photo", 0) == 0 or (a.photo_dir is not None and Path(a.photo_dir).is_dir()),
             "appearance.photo_dir", f"a folder of photos when texture_weights.photo > 0, got {a.photo_dir!r} "
             "(install mate-backgrounds, give --set appearance.photo_dir=DIR, or set texture_weights.photo=0)")
        need(1 <= a.lights[0] <= a.lights[1], "appearance.lights", "1 <= low <= high")
        c = self.camera
        need(0 < c.fov[0] <= c.fov[1] < 170, "camera.fov", "0 < low <= high < 170 degrees")
        need(0 <= c.overlap[0] <= c.overlap[1] <= 1, "camera.overlap", "0 <= low <= high <= 1")
        need(c.max_tries >= 1, "camera.max_tries", ">= 1")
        p = self.physics
        need(p.max_steps >= 0 and p.check_every >= 1, "physics.max_steps/check_every", "max_steps >= 0, check_every >= 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML value to the annotated type ``tp`` or raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"render config: {key}: expected a mapping, got {value!r}")
        return _build(tp, value, key + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"render config: {key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"render config: {key}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"render config: {key}: expected a mapping, got {value!r}")
        return {str(k): _convert(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"render config: {key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"render config: {key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"render config: {key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"render config: {key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"render config: {key}: unsupported type {tp}")  # pragma: no cover


def _build(cls, data: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"render config: unknown key {prefix}{unknown[0]!s} (known: {', '.join(sorted(names))})")
    base = cls()
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            if dataclasses.is_dataclass(hints[f.name]) and isinstance(value, dict):
                # merge a partial section over the defaults
                merged = dataclasses.asdict(getattr(base, f.name))
                merged.update(value)
                value = merged
            kwargs[f.name] = _convert(value, hints[f.name], prefix + f.name)
    return cls(**kwargs)


def config_from_dict(data: dict | None) -> RenderConfig:
    """Build a validated RenderConfig from a (partial) nested dict."""
    return _build(RenderConfig, dict(data or {})).validate()


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RenderConfig:
    """Load ``path`` (default: the embedded default.yaml), apply nested ``overrides``, validate."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        data = safe_load(path.read_text()) or {}  # 3e-4 is a number
    except FileNotFoundError:
        raise ConfigError(f"render config: file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"render config: {path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"render config: {path}: expected a mapping at the top level")
    for key, value in (overrides or {}).items():
        section = data
        parts = key.split(".")
        for part in parts[:-1]:
            section = section.setdefault(part, {})
        section[parts[-1]] = value
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        where = f"{path} with overrides {sorted(overrides)}" if overrides else str(path)
        raise ConfigError(f"{exc} (config: {where})") from None


__all__ = ["RenderConfig", "ObjectsConfig", "PhysicsConfig", "AppearanceConfig", "CameraConfig",
           "ConfigError", "load_config", "config_from_dict", "DEFAULT_CONFIG_PATH"]
