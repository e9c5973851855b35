"""Object placement on the floor (z = 0): pybullet drop-and-settle, or random non-overlapping placement.

Meshes are given in their object frame (already scaled, centred near the origin);
the result is one rigid object-to-world pose [4,4] per mesh. pybullet is optional:
without it :func:`physics_available` is False and placement falls back to
:func:`place_without_physics` (a one-line notice is printed once).
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable, Sequence

import numpy as np
import trimesh
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from .config import PhysicsConfig
from .resting import HullFaces, resting_rotation


def _import_pybullet():
    """Import pybullet without its C-level "pybullet build time" banner (printed on stderr or stdout,
    by version): file descriptors 1 and 2 point at /dev/null while the module loads, and C stdio is
    flushed there before they are restored, so no rendering process prints it."""
    saved: list[tuple[int, int]] = []
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptors (an embedding host)
        pass
    try:
        import pybullet

        return pybullet
    except ImportError:  # pybullet has wheels for CPython 3.11 only
        return None
    finally:
        if saved:
            _flush_c_stdio()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def _flush_c_stdio() -> None:
    """fflush(NULL): write out what C code buffered for the current file descriptors."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to ask (never on Linux)
        pass


_pb = _import_pybullet()

_MAX_HULL_POINTS = 512  # collision cost grows with hull size; up to 512 points, primitives keep their whole hull


def physics_available() -> bool:
    """True when pybullet imports."""
    return _pb is not None


def physics_notice() -> None:
    """Print that physics is off because pybullet is missing (a render says it once per run; its
    workers place objects without physics and say nothing)."""
    print(
        "synthssl.render: pybullet is not installed; objects are placed without physics "
        "(pip install pybullet, Python <= 3.11 has wheels)",
        file=sys.stderr,
    )


def _pose(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rotation, translation
    return T


def place_without_physics(
    meshes: list[trimesh.Trimesh], rng: np.random.Generator, cfg: PhysicsConfig
) -> list[np.ndarray]:
    """Random orientation, lowest point on the floor, non-overlapping bounding circles inside the area."""
    return place_on_floor(meshes, rng, cfg, lambda k, mesh, rng: Rotation.random(random_state=rng).as_matrix())


def place_resting(
    meshes: list[trimesh.Trimesh],
    rng: np.random.Generator,
    cfg: PhysicsConfig,
    hulls: Sequence[HullFaces | None] | None = None,
) -> list[np.ndarray]:
    """Each object on a stable face of its convex hull (`resting.resting_rotation`), lowest point on the
    floor, non-overlapping bounding circles inside the area: what a slow drop of objects that do not
    touch each other settles to, without a simulation. ``hulls[k]``: mesh k's hull faces when known
    (`resting.shared_hull_faces` of the mesh it scales), else None (computed)."""
    known = list(hulls) if hulls is not None else [None] * len(meshes)
    return place_on_floor(meshes, rng, cfg, lambda k, mesh, rng: resting_rotation(mesh, rng, known[k]))


def place_on_floor(
    meshes: list[trimesh.Trimesh],
    rng: np.random.Generator,
    cfg: PhysicsConfig,
    orient: Callable[[int, trimesh.Trimesh, np.random.Generator], np.ndarray],
) -> list[np.ndarray]:
    """Per mesh k in order: rotation ``orient(k, mesh, rng)`` [3, 3], then a position in the ``cfg.area``
    square whose bounding circle (of the rotated mesh's x-y extent) overlaps no earlier one, lowest
    point on the floor; rigid object-to-world poses [4, 4].

    When an object cannot be placed without overlap after 100 tries, the area is
    widened by 10 % and placement goes on (always terminates).
    """
    poses: list[np.ndarray] = []
    placed: list[tuple[np.ndarray, float]] = []
    half = cfg.area / 2
    for k, mesh in enumerate(meshes):
        R = orient(k, mesh, rng)
        v = mesh.vertices @ R.T
        r = float(np.max(np.linalg.norm(v[:, :2], axis=1)))
        while True:
            for _ in range(100):
                xy = rng.uniform(-half, half, 2)
                if all(np.linalg.norm(xy - c) >= r + rc for c, rc in placed):
                    break
            else:
                half *= 1.1
                continue
            break
        placed.append((xy, r))
        poses.append(_pose(R, np.array([xy[0], xy[1], -float(v[:, 2].min())])))
    return poses


def _hull_points(mesh: trimesh.Trimesh) -> np.ndarray:
    """Vertices of the convex hull (scipy; at most ``_MAX_HULL_POINTS``), the collision shape's input."""
    pts = np.asarray(mesh.vertices, np.float64)
    try:
        pts = pts[ConvexHull(pts).vertices]
    except Exception:  # degenerate (flat) mesh: pybullet gets the raw vertices
        pass
    if len(pts) > _MAX_HULL_POINTS:
        pts = pts[_farthest_points(pts, _MAX_HULL_POINTS)]
    return pts


def _farthest_points(pts: np.ndarray, k: int) -> np.ndarray:
    """Indices of k points: the six axis extremes, then greedy farthest-point sampling (keeps the shape's extent)."""
    chosen = list(dict.fromkeys([*np.argmin(pts, axis=0).tolist(), *np.argmax(pts, axis=0).tolist()]))
    dist = np.min(_lengths(pts[:, None, :] - pts[chosen][None]), axis=1)
    step = np.empty_like(pts)
    while len(chosen) < k:
        i = int(np.argmax(dist))
        chosen.append(i)
        np.subtract(pts, pts[i], out=step)
        np.minimum(dist, _lengths(step), out=dist)
    return np.array(chosen)


def _lengths(vectors: np.ndarray) -> np.ndarray:
    """Euclidean lengths over the last axis, computed as ``np.linalg.norm(vectors, axis=-1)`` computes
    them (square root of the sum of squares), without its per-call overhead."""
    return np.sqrt(np.add.reduce(vectors * vectors, axis=-1))


class PhysicsWorld:
    """One pybullet DIRECT client, reused across scenes (reset per scene)."""

    def __init__(self) -> None:
        if _pb is None:
            raise RuntimeError("pybullet is not installed")
        self.client = _pb.connect(_pb.DIRECT)

    def close(self) -> None:
        if self.client is not None and _pb is not None:
            _pb.disconnect(self.client)
            self.client = None

    def settle(
        self, meshes: list[trimesh.Trimesh], rng: np.random.Generator, cfg: PhysicsConfig
    ) -> tuple[list[np.ndarray], int]:
        """Drop ``meshes`` with random orientations; simulate until all rest or ``max_steps``.

        Collision shapes are the convex hulls of the meshes; the floor is an infinite
        plane at z = 0. Returns (object-to-world poses, simulated steps). Objects that
        leave the area (fell off / bounced far) are clamped back by the caller's camera
        framing only; their pose is returned as simulated.
        """
        pb, cid = _pb, self.client
        pb.resetSimulation(physicsClientId=cid)
        pb.setGravity(0, 0, -9.81, physicsClientId=cid)
        pb.setPhysicsEngineParameter(
            fixedTimeStep=cfg.timestep, numSolverIterations=10, deterministicOverlappingPairs=1, physicsClientId=cid
        )
        plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=cid)
        pb.createMultiBody(0, plane, physicsClientId=cid)
        start = place_without_physics(meshes, rng, cfg)
        bodies = []
        for mesh, pose in zip(meshes, start):
            R = Rotation.from_matrix(pose[:3, :3])
            pos = pose[:3, 3] + np.array([0.0, 0.0, rng.uniform(*cfg.drop_height)])
            shape = pb.createCollisionShape(pb.GEOM_MESH, vertices=_hull_points(mesh).tolist(), physicsClientId=cid)
            mass = float(max(np.prod(mesh.extents), 1e-4) * 300.0)  # ~half the box volume at 600 kg/m^3
            body = pb.createMultiBody(
                mass, shape, basePosition=pos.tolist(), baseOrientation=R.as_quat().tolist(), physicsClientId=cid
            )
            pb.changeDynamics(
                body,
                -1,
                lateralFriction=0.8,
                rollingFriction=0.03,
                spinningFriction=0.03,
                restitution=0.05,
                linearDamping=0.1,
                angularDamping=0.5,
                physicsClientId=cid,
            )
            bodies.append(body)
        steps = 0
        while steps < cfg.max_steps:
            for _ in range(min(cfg.check_every, cfg.max_steps - steps)):
                pb.stepSimulation(physicsClientId=cid)
                steps += 1
            velocities = np.array([pb.getBaseVelocity(b, physicsClientId=cid) for b in bodies])  # [B, 2, 3]
            if bool(np.all(_lengths(velocities) < cfg.rest_velocity)):
                break
        poses = []
        for b in bodies:
            pos, quat = pb.getBasePositionAndOrientation(b, physicsClientId=cid)
            poses.append(_pose(Rotation.from_quat(quat).as_matrix(), np.asarray(pos)))
        return lift_onto_floor(meshes, poses), steps


#: Objects whose lowest point is within this height (metres) of a surface below them touch it.
CONTACT_TOLERANCE = 1e-3


def lift_onto_floor(meshes: list[trimesh.Trimesh], poses: list[np.ndarray]) -> list[np.ndarray]:
    """``poses`` with every object that dips below the floor (z < 0) raised until its lowest vertex
    is on it, and every object resting on a raised one raised by as much.

    pybullet's contacts let a heavy settled hull sink up to a few millimetres into the plane, and a
    collision hull reduced to ``_MAX_HULL_POINTS`` vertices lets the rendered mesh reach further
    down; here its lowest vertex is put exactly on the floor. An object whose lowest
    point is above the floor (``> CONTACT_TOLERANCE``) rests on others: it goes up by the largest
    lift of the objects below it whose footprints (x-y bounds) overlap its own and whose top
    reaches its lowest point. Objects are handled from the lowest up, so a stack rises together.
    """
    world = [trimesh.transform_points(m.vertices, p) for m, p in zip(meshes, poses)]
    lows = np.array([float(v[:, 2].min()) for v in world])
    lifts = np.zeros(len(meshes))
    for k in np.argsort(lows, kind="stable"):
        if lows[k] < 0.0:
            lifts[k] = -lows[k]
        elif lows[k] > CONTACT_TOLERANCE:
            lo_k, hi_k = world[k][:, :2].min(axis=0), world[k][:, :2].max(axis=0)
            for j in range(len(meshes)):
                below = j != k and lows[j] < lows[k] and float(world[j][:, 2].max()) >= lows[k] - CONTACT_TOLERANCE
                lo_j, hi_j = world[j][:, :2].min(axis=0), world[j][:, :2].max(axis=0)
                if below and np.all(lo_j <= hi_k) and np.all(lo_k <= hi_j):
                    lifts[k] = max(lifts[k], lifts[j])
    out = []
    for pose, lift in zip(poses, lifts):
        raised = np.array(pose, dtype=np.float64)
        raised[2, 3] += lift
        out.append(raised)
    return out


__all__ = [
    "PhysicsWorld",
    "place_without_physics",
    "place_resting",
    "place_on_floor",
    "lift_onto_floor",
    "physics_available",
    "physics_notice",
]
