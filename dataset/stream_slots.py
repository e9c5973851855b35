"""Scenes in shared memory: the slot layout of one scene and a ring of slots in one block.

A render worker process writes a scene into a slot of a `SlotRing`; the training process reads
NumPy views of that slot and copies them out once. Nothing else crosses the process boundary
but a few words per scene (which slot, which scene), so a scene is never pickled.

`SlotLayout` is a pure function of ``(views, height, width, fields)``: both sides compute it
from the same four values and agree on every byte. Each field keeps the dtype and per-scene
shape that `synthssl.dataset.schema` gives it in a shard (V views, H x W pixels):

``rgb`` uint8 [V,H,W,3]; ``depth`` float32 [V,H,W] (metres, 0 = no surface); ``normal``
float16 [V,H,W,3]; ``contour`` uint8 [V,H,W]; ``instance`` / ``category`` uint16 [V,H,W];
``intrinsics`` float32 [V,3,3]; ``cam_to_world`` float32 [V,4,4]; ``scene_id`` int64 [].

Fields start at multiples of `ALIGN` bytes, and so do slots. ``rgb`` and ``scene_id`` are
always in a layout; the other fields only when asked for.

A `SlotRing` holds ``slots`` slots of one layout in one `multiprocessing.shared_memory`
block (a file in ``/dev/shm`` on Linux). The process that creates it (`SlotRing.create`)
owns it: its `close` unlinks the block, and Python's resource tracker unlinks it should that
process die without closing it. Other processes `SlotRing.attach` by name without taking
part in that tracking, so their exit never removes the block under its owner.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .schema import SCENE_FIELDS, VIEW_FIELDS

#: Byte alignment of every field and slot (a cache line; every dtype's alignment divides it).
ALIGN = 64
#: The fields a slot can hold, in layout order.
SLOT_FIELDS = ("rgb", "depth", "normal", "contour", "instance", "category", "intrinsics", "cam_to_world", "scene_id")
#: Prefix of the shared-memory block names (``/dev/shm/synthssl-stream-...``).
NAME_PREFIX = "synthssl-stream-"
#: Where Linux keeps POSIX shared memory.
SHM_DIR = "/dev/shm"


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class SlotField:
    """One field of a slot: ``offset`` bytes from the slot's start, ``dtype`` and ``shape``."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(frozen=True)
class SlotLayout:
    """Where each field of one scene lies in a slot (see the module docstring)."""

    views: int
    height: int
    width: int
    fields: tuple[SlotField, ...]
    slot_bytes: int

    @classmethod
    def build(cls, views: int, height: int, width: int, fields: Sequence[str]) -> "SlotLayout":
        """The layout of ``fields`` (plus ``rgb`` and ``scene_id``) for V x H x W scenes."""
        unknown = sorted(set(fields) - set(SLOT_FIELDS))
        if unknown:
            raise ValueError(f"slot layout: unknown fields {unknown}; known: {list(SLOT_FIELDS)}")
        if min(views, height, width) < 1:
            raise ValueError(f"slot layout: views, height and width must be >= 1, got {views}, {height}, {width}")
        wanted = set(fields) | {"rgb", "scene_id"}
        out, offset = [], 0
        for name in SLOT_FIELDS:
            if name not in wanted:
                continue
            spec = VIEW_FIELDS.get(name) or SCENE_FIELDS[name]
            entry = SlotField(name, np.dtype(spec.dtype), tuple(spec.shape(height, width, views, 0)), offset)
            out.append(entry)
            offset = _aligned(offset + entry.nbytes)
        return cls(int(views), int(height), int(width), tuple(out), max(offset, ALIGN))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> SlotField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"slot layout: no field {name!r} (holds {list(self.names)})")


class SlotRing:
    """``slots`` scene slots of one `SlotLayout` in one shared-memory block (see the module docstring)."""

    def __init__(self, layout: SlotLayout, slots: int, name: str, buffer: Any, owner: Optional[Any]):
        self.layout, self.slots, self.name = layout, int(slots), name
        self._buffer = buffer  # memoryview (owner) or mmap (attached)
        self._owner = owner  # the SharedMemory object of the creating process, else None
        self._map: Optional[mmap.mmap] = buffer if owner is None else None

    @staticmethod
    def nbytes(layout: SlotLayout, slots: int) -> int:
        """Bytes of a ring of ``slots`` slots."""
        return layout.slot_bytes * int(slots)

    @classmethod
    def create(cls, layout: SlotLayout, slots: int, name: Optional[str] = None) -> "SlotRing":
        """A new block for ``slots`` slots, owned by this process (its `close` unlinks it)."""
        if slots < 1:
            raise ValueError(f"slot ring: slots must be >= 1, got {slots}")
        name = name or f"{NAME_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
        shm = shared_memory.SharedMemory(name=name, create=True, size=cls.nbytes(layout, slots))
        return cls(layout, slots, shm.name, shm.buf, shm)

    @classmethod
    def attach(cls, layout: SlotLayout, slots: int, name: str) -> "SlotRing":
        """The block ``name`` another process created, mapped here without unlinking it at exit.

        Opened as the file ``/dev/shm/NAME`` that ``multiprocessing.shared_memory`` creates on Linux:
        attaching through ``SharedMemory(name)`` would register the block with this process's
        resource tracker (Python < 3.13), which unlinks it when this process ends."""
        path = os.path.join(SHM_DIR, name.lstrip("/"))
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            need = cls.nbytes(layout, slots)
            if size < need:
                raise ValueError(f"slot ring {name}: {size} bytes, the layout needs {need} for {slots} slots")
            mapped = mmap.mmap(fd, need)
        finally:
            os.close(fd)
        return cls(layout, slots, name, mapped, None)

    def _check(self, slot: int) -> int:
        if not 0 <= int(slot) < self.slots:
            raise IndexError(f"slot ring: slot {slot} out of range 0..{self.slots - 1}")
        return int(slot)

    def views(self, slot: int) -> dict[str, np.ndarray]:
        """{field: NumPy array viewing slot ``slot``'s memory}; writable, valid until `close`.
        Let them go before `close` (a view that is still held keeps the block mapped)."""
        base = self._check(slot) * self.layout.slot_bytes
        return {
            f.name: np.ndarray(f.shape, dtype=f.dtype, buffer=self._buffer, offset=base + f.offset)
            for f in self.layout.fields
        }

    def write(self, slot: int, scene: Mapping[str, Any]) -> None:
        """Copy the layout's fields of ``scene`` (a dict as `synthssl.render.SceneSource.render` returns,
        at least those fields, of the layout's shapes) into slot ``slot``."""
        for name, view in self.views(slot).items():
            value = np.asarray(scene[name])
            if value.shape != view.shape:
                raise ValueError(f"slot ring: {name} has shape {value.shape}, the layout holds {view.shape}")
            view[...] = value
            del view

    def close(self) -> None:
        """Unmap the block; the creating process also unlinks it (idempotent)."""
        owner, mapped = self._owner, self._map
        self._owner = self._map = self._buffer = None
        if owner is not None:
            try:
                owner.unlink()  # the name first: nothing is left in /dev/shm whatever follows
            except FileNotFoundError:
                pass
            try:
                owner.close()
            except BufferError:  # a view still held: the memory goes when it does
                pass
        if mapped is not None:
            try:
                mapped.close()
            except BufferError:
                pass

    def __enter__(self) -> "SlotRing":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def leftover_blocks(directory: str = SHM_DIR) -> list[str]:
    """Names of the stream blocks in ``directory`` (tests look for leaks)."""
    try:
        return sorted(n for n in os.listdir(directory) if n.startswith(NAME_PREFIX))
    except FileNotFoundError:
        return []


__all__ = ["ALIGN", "SLOT_FIELDS", "NAME_PREFIX", "SlotField", "SlotLayout", "SlotRing", "leftover_blocks"]
