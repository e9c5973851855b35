"""dataset/stream_slots.py: the slot layout of a scene, and a ring of slots shared between processes
that leaves nothing in /dev/shm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from synthssl.dataset.stream_slots import ALIGN, SHM_DIR, SlotLayout, SlotRing, leftover_blocks

pytestmark = pytest.mark.skipif(not os.path.isdir(SHM_DIR), reason="POSIX shared memory in /dev/shm (Linux)")


def _scene(index: int, views: int = 2, size: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(index)
    return {
        "rgb": rng.integers(0, 256, (views, size, size, 3), dtype=np.uint8),
        "depth": rng.random((views, size, size), dtype=np.float32),
        "normal": rng.random((views, size, size, 3)).astype(np.float16),
        "contour": rng.integers(0, 2, (views, size, size), dtype=np.uint8),
        "instance": rng.integers(0, 40, (views, size, size), dtype=np.uint16),
        "category": rng.integers(0, 20, (views, size, size), dtype=np.uint16),
        "intrinsics": rng.random((views, 3, 3), dtype=np.float32),
        "cam_to_world": rng.random((views, 4, 4), dtype=np.float32),
        "scene_id": np.int64(index),
    }


def test_layout_places_each_field_aligned_in_schema_dtypes_and_always_holds_rgb_and_scene_id():
    layout = SlotLayout.build(2, 8, 8, ["depth", "instance"])
    assert layout.names == ("rgb", "depth", "instance", "scene_id")
    rgb, depth, instance, scene_id = layout.fields
    assert (rgb.dtype, rgb.shape, rgb.offset, rgb.nbytes) == (np.dtype(np.uint8), (2, 8, 8, 3), 0, 384)
    assert (depth.dtype, depth.shape, depth.offset) == (np.dtype(np.float32), (2, 8, 8), 384)
    assert (instance.dtype, instance.offset) == (np.dtype(np.uint16), 384 + 512)
    assert (scene_id.dtype, scene_id.shape, scene_id.offset) == (np.dtype(np.int64), (), 384 + 512 + 256)
    assert layout.slot_bytes == 384 + 512 + 256 + ALIGN
    assert SlotLayout.build(3, 5, 7, []).field("rgb").shape == (3, 5, 7, 3)
    assert SlotLayout.build(2, 8, 8, ["depth", "instance"]) == layout  # a pure function of its four values
    with pytest.raises(ValueError, match="unknown fields"):
        SlotLayout.build(2, 8, 8, ["objects_json"])


def test_ring_round_trips_every_field_and_close_unlinks_it():
    fields = ["depth", "normal", "contour", "instance", "category", "intrinsics", "cam_to_world"]
    layout = SlotLayout.build(2, 8, 8, fields)
    with SlotRing.create(layout, 3) as ring:
        assert os.path.exists(os.path.join(SHM_DIR, ring.name)) and ring.name in leftover_blocks()
        for slot in range(3):
            ring.write(slot, _scene(10 + slot))
        for slot in range(3):
            got = ring.views(slot)
            for name, value in _scene(10 + slot).items():
                assert got[name].dtype == value.dtype and np.array_equal(got[name], value), name
            del got
        name = ring.name
    assert not os.path.exists(os.path.join(SHM_DIR, name))
    ring.close()  # idempotent


def test_an_attached_process_writes_what_the_owner_reads_and_its_exit_removes_nothing():
    layout = SlotLayout.build(2, 8, 8, ["depth"])
    with SlotRing.create(layout, 2) as ring:
        code = textwrap.dedent(
            f"""
            import numpy as np
            from synthssl.dataset.stream_slots import SlotLayout, SlotRing
            ring = SlotRing.attach(SlotLayout.build(2, 8, 8, ["depth"]), 2, {ring.name!r})
            ring.write(1, {{"rgb": np.full((2, 8, 8, 3), 7, np.uint8), "depth": np.full((2, 8, 8), 2.5, np.float32),
                           "scene_id": np.int64(41)}})
            ring.close()
            """
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr  # no resource-tracker "leak" warning
        views = ring.views(1)
        assert int(views["scene_id"]) == 41 and (views["rgb"] == 7).all() and (views["depth"] == 2.5).all()
        del views
        assert os.path.exists(os.path.join(SHM_DIR, ring.name))  # the other process's exit left it in place
    assert ring.name not in leftover_blocks()


def test_an_owner_killed_without_closing_leaves_nothing_in_dev_shm():
    code = textwrap.dedent(
        """
        import sys, time
        from synthssl.dataset.stream_slots import SlotLayout, SlotRing
        ring = SlotRing.create(SlotLayout.build(2, 8, 8, []), 2)
        print(ring.name, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        name = proc.stdout.readline().strip()
        assert name and os.path.exists(os.path.join(SHM_DIR, name))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while os.path.exists(os.path.join(SHM_DIR, name)) and time.monotonic() < deadline:
            time.sleep(0.05)  # the resource tracker unlinks it once its owner is gone
        assert not os.path.exists(os.path.join(SHM_DIR, name))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
