"""The photo cache: decoded once per photo set, then mapped; the same pixels and picks as decoding."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from helpers.call_counter import CallCounter

from synthssl.render.cache_folder import INDEX_NAME, cache_root
from synthssl.render.config import config_from_dict
from synthssl.render.photo_cache import (
    PhotoSet,
    decode_photo_set,
    open_photo_set,
    photo_set_key,
    read_photo_set,
    write_photo_set,
)
from synthssl.render.photos import load_photo, pick_photo, scan_photos
from synthssl.render.pipeline import ready_worker_inputs
from synthssl.render.textures import PHOTO_SIDE_PER_TEXTURE, make_texture


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    """A fresh cache root per test, and no photo set kept from another test in this process."""
    monkeypatch.setenv("SYNTHSSL_CACHE_DIR", str(tmp_path / "cache"))
    open_photo_set.cache_clear()
    scan_photos.cache_clear()
    load_photo.cache_clear()
    yield
    open_photo_set.cache_clear()


def _photos(folder, sizes=((40, 60), (70, 30), (25, 25))):
    """PNG photos of the given (height, width), each a distinct colour ramp; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, (h, w) in enumerate(sizes):
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([x * 4 % 256, y * 3 % 256, np.full_like(x, 40 * k)], -1).astype(np.uint8)
        assert cv2.imwrite(str(folder / f"p{k}.png"), img)
    return folder


def test_a_photo_set_is_decoded_once_then_mapped_with_the_decoded_pixels(tmp_path, monkeypatch):
    folder = _photos(tmp_path / "photos")
    imread = CallCounter(monkeypatch, cv2, "imread")
    first = open_photo_set(str(folder), 32)
    assert imread.calls == 3
    open_photo_set.cache_clear()
    load_photo.cache_clear()
    again = open_photo_set(str(folder), 32)
    assert imread.calls == 3  # mapped from the cache: nothing decoded
    assert isinstance(again.pixels, np.memmap) and not again.pixels.flags.writeable
    assert again.files == first.files == scan_photos(str(folder)).usable
    for j, f in enumerate(again.files):
        expected = load_photo(f, 32)
        assert expected.shape[:2] == tuple(again.shapes[j])
        assert np.array_equal(again.image(j), expected)
    assert [tuple(s) for s in again.shapes] == [(21, 32), (32, 13), (25, 25)]  # shrunk to 32, never grown
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_photo_textures_from_the_cache_equal_those_decoded_per_process(tmp_path):
    folder = _photos(tmp_path / "photos", sizes=((300, 280), (260, 320)))
    size = 16
    files = scan_photos(str(folder)).usable
    for seed in range(8):
        rng_cache, rng_plain = np.random.default_rng(seed), np.random.default_rng(seed)
        got = make_texture("photo", rng_cache, size, str(folder))
        img = pick_photo(files, int(rng_plain.integers(len(files))), PHOTO_SIDE_PER_TEXTURE * size)
        h, w = img.shape[:2]
        side = int(min(h, w) * rng_plain.uniform(0.3, 1.0))
        y0, x0 = int(rng_plain.integers(0, h - side + 1)), int(rng_plain.integers(0, w - side + 1))
        want = cv2.resize(
            np.ascontiguousarray(img[y0 : y0 + side, x0 : x0 + side]), (size, size), interpolation=cv2.INTER_AREA
        )
        assert np.array_equal(got, want)


def test_the_key_follows_the_files_names_sizes_and_times(tmp_path):
    folder = _photos(tmp_path / "photos")
    key = photo_set_key(str(folder), 32)
    assert key == photo_set_key(str(folder), 32)
    assert key != photo_set_key(str(folder), 64)
    (folder / "notes.txt").write_text("not an image")  # not an image file: not part of the set
    assert photo_set_key(str(folder), 32) == key
    os.utime(folder / "p0.png", ns=(1_000_000_000, 1_000_000_000))
    touched = photo_set_key(str(folder), 32)
    assert touched != key
    (folder / "p0.png").rename(folder / "q0.png")
    assert photo_set_key(str(folder), 32) not in (key, touched)


def test_a_photo_whose_pixels_do_not_decode_gives_way_as_when_decoding(tmp_path):
    folder = _photos(tmp_path / "photos")
    (folder / "a.png").write_bytes((folder / "p0.png").read_bytes()[:60])  # a valid header, then nothing
    photos = open_photo_set(str(folder), 32)
    assert [os.path.basename(f) for f in photos.files] == ["a.png", "p0.png", "p1.png", "p2.png"]
    assert photos.offsets[0] == -1 and photos.image(0) is None
    for j in range(4):
        assert np.array_equal(photos.pick(j), pick_photo(photos.files, j, 32))
    assert np.array_equal(photos.pick(0), photos.image(1))


def test_a_set_with_no_decodable_pixels_is_an_error_naming_the_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    (folder / "a.png").write_bytes(png[:60])
    photos = open_photo_set(str(folder), 32)
    with pytest.raises(ValueError, match=f"appearance.photo_dir: none of the 1 photos under {folder} can be decoded"):
        photos.pick(0)


def test_a_set_another_process_wrote_first_wins_and_no_temporary_folder_stays(tmp_path):
    folder = _photos(tmp_path / "photos")
    mine = decode_photo_set(str(folder), 32)
    dest = tmp_path / "cache" / "photos-x"
    theirs = PhotoSet(mine.folder, mine.files, mine.offsets, mine.shapes, np.zeros_like(mine.pixels))
    write_photo_set(theirs, 32, dest)
    write_photo_set(mine, 32, dest)  # the rename loses: the folder in place is kept
    assert not np.any(read_photo_set(dest).pixels)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["photos-x"]
    assert sorted(p.name for p in dest.iterdir()) == [INDEX_NAME, "pixels.npy"]


def test_an_unwritable_cache_folder_decodes_in_memory_and_says_so_once(tmp_path, monkeypatch, caplog):
    folder = _photos(tmp_path / "photos")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SYNTHSSL_CACHE_DIR", str(blocked))
    with caplog.at_level("WARNING", logger="synthssl.render"):
        photos = open_photo_set(str(folder), 32)
        open_photo_set(str(folder), 32)
    assert not isinstance(photos.pixels, np.memmap)
    assert np.array_equal(photos.image(2), load_photo(photos.files[2], 32))
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith(f"cannot write the photo cache in {blocked} (")
    assert caplog.messages[0].endswith(
        "each render process decodes the photos itself (set SYNTHSSL_CACHE_DIR to a writable folder)"
    )


def test_a_render_builds_the_photo_set_before_its_workers_start(tmp_path):
    folder = _photos(tmp_path / "photos")
    cfg = config_from_dict({"out": str(tmp_path / "out"), "appearance": {"photo_dir": str(folder)}})
    ready_worker_inputs(cfg)
    key = photo_set_key(str(folder), PHOTO_SIDE_PER_TEXTURE * cfg.appearance.texture_size)
    assert (cache_root() / f"photos-{key}" / INDEX_NAME).is_file()
    without = config_from_dict(
        {"out": str(tmp_path / "out2"), "appearance": {"photo_dir": str(_photos(tmp_path / "other"))}}
    )
    without.appearance.texture_weights["photo"] = 0.0
    ready_worker_inputs(without)
    assert len(list(cache_root().glob("photos-*"))) == 1  # no photo textures: no photo set
