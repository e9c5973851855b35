"""Object placement on the floor (z = 0): stable resting poses, or random orientations without physics.

Meshes are given in their object frame (already scaled, centred near the origin); the result is
one rigid object-to-world pose [4, 4] per mesh. Both placements draw each object's orientation
(``Rotation.random``) and then its position from the scene's generator, one object after the
other, and keep the objects' footprints apart: each object gets a spot in the ``physics.area``
square where its bounding circle (about its vertical axis, over its vertices) overlaps no other
object's (100 tries, then the square grows by 10 % and placement goes on: it always ends).

* `place_at_rest` (``physics.enabled``): each object lies on a stable facet of its convex hull,
  the one it topples to quasi-statically from the drawn orientation
  (`synthssl.render.resting`), turned by the smallest rotation that lays that facet on the floor
  and lowered until the facet touches it. The object is then in static equilibrium, in contact
  with the floor and with nothing else: no part is below the floor and none of its resting facet
  floats above it.
* `place_without_physics`: the drawn orientation as it is, lowered until its lowest vertex
  touches the floor (most objects balance on a vertex or an edge).

Meshes whose points span no volume (a flat asset) are placed without physics in either case.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from .config import PhysicsConfig
from .resting import HullTopology, rest_rotation, resting_hull

#: Spots tried per object before the placement square grows by `GROWTH`.
TRIES = 100
GROWTH = 1.1


def _pose(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rotation, translation
    return T


class _Footprints:
    """The bounding circles placed so far; `spot` draws a free one for a new circle."""

    def __init__(self, area: float):
        self.half = area / 2
        self.placed: list[tuple[np.ndarray, float]] = []

    def spot(self, rng: np.random.Generator, radius: float) -> np.ndarray:
        """[2]: a position in the square whose circle of ``radius`` overlaps no placed circle."""
        while True:
            for _ in range(TRIES):
                xy = rng.uniform(-self.half, self.half, 2)
                if all(np.linalg.norm(xy - c) >= radius + rc for c, rc in self.placed):
                    self.placed.append((xy, radius))
                    return xy
            self.half *= GROWTH


def _place(points: np.ndarray, R: np.ndarray, rng: np.random.Generator, footprints: _Footprints) -> np.ndarray:
    """The pose of rotation ``R`` whose lowest point of ``points`` [N, 3] touches the floor, at a free spot."""
    v = points @ R.T
    xy = footprints.spot(rng, float(np.max(np.linalg.norm(v[:, :2], axis=1))))
    return _pose(R, np.array([xy[0], xy[1], -float(v[:, 2].min())]))


def place_without_physics(
    meshes: list[trimesh.Trimesh], rng: np.random.Generator, cfg: PhysicsConfig
) -> list[np.ndarray]:
    """Random orientations, lowest vertex on the floor, footprints apart (module docstring)."""
    footprints = _Footprints(cfg.area)
    return [
        _place(np.asarray(m.vertices), Rotation.random(random_state=rng).as_matrix(), rng, footprints) for m in meshes
    ]


def place_at_rest(
    meshes: list[trimesh.Trimesh],
    rng: np.random.Generator,
    cfg: PhysicsConfig,
    topologies: list[HullTopology | None] | None = None,
) -> list[np.ndarray]:
    """Stable resting poses on the floor, footprints apart (module docstring). ``topologies[i]``:
    the hull topology of mesh i's points (for instance that of its base mesh before the per-axis
    scaling, `synthssl.render.resting.cached_topology`), computed when None."""
    footprints = _Footprints(cfg.area)
    poses = []
    for mesh, topology in zip(meshes, topologies or [None] * len(meshes)):
        drawn = Rotation.random(random_state=rng).as_matrix()
        try:
            hull = resting_hull(np.asarray(mesh.vertices), topology)
        except ValueError:  # no volume: nothing to rest on
            poses.append(_place(np.asarray(mesh.vertices), drawn, rng, footprints))
            continue
        poses.append(_place(hull.points, rest_rotation(hull, drawn), rng, footprints))
    return poses


__all__ = ["place_at_rest", "place_without_physics"]
