"""``train-ssl predict`` on odd inputs: any size/aspect, grayscale, RGBA, webp, a corrupt file."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from synthssl.train.cli import main as train_ssl
from synthssl.train.predict.feed import feed_image
from synthssl.train.predict.images import output_names, read_rgb

SIZE = 40


@pytest.fixture(scope="module")
def predicted(heads_run, odd_images, tmp_path_factory):
    out = tmp_path_factory.mktemp("predicted")
    code = train_ssl(
        ["predict", f"run={heads_run}", f"images={odd_images}", f"out={out}", f"size={SIZE}", "device=cpu", "batch=2"]
    )
    return code, out


def _expected_size(h: int, w: int) -> tuple[int, int]:
    s = SIZE / min(h, w)
    return max(SIZE, round(h * s)), max(SIZE, round(w * s))


@pytest.mark.parametrize(
    "name, original", [("odd", (37, 91)), ("sub/gray", (50, 40)), ("sub/rgba", (45, 45)), ("wide", (20, 70))]
)
def test_every_readable_image_gets_its_maps(predicted, name, original):
    code, out = predicted
    assert code == 0
    h, w = _expected_size(*original)
    folder = out / name
    depth = np.load(folder / "depth.npy")
    normals = np.load(folder / "normals.npy")
    assert depth.shape == (h, w) and depth.dtype == np.float32 and (depth > 0).all()
    assert normals.shape == (h, w, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-4)
    contours = cv2.imread(str(folder / "contours.png"), cv2.IMREAD_UNCHANGED)
    assert contours.shape[:2] == (h, w)
    assert cv2.imread(str(folder / "normals.png")).shape == (h, w, 3)
    bar = cv2.imread(str(folder / "depth.png"))
    assert bar.shape[0] == h and bar.shape[1] > w  # the colour bar sits on the right
    assert not list(folder.glob("*.tmp"))


def test_corrupt_file_is_skipped_and_listed(predicted, odd_images, capsys):
    code, out = predicted
    summary = json.loads((out / "predict.json").read_text())
    assert summary["skipped"] == [str(odd_images / "broken.png")]
    assert {r["out"] for r in summary["images"]} == {"odd", "sub/gray", "sub/rgba", "wide"}
    assert not (out / "broken").exists()


def test_contact_sheet_has_one_row_per_image(predicted):
    _, out = predicted
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    # panel_grid: 30 px header + 24 px title + 4 rows of (160 + 4) + 4
    assert sheet.shape[0] == 30 + 24 + 4 * 164 + 4
    assert sheet.shape[1] == 110 + 4 * 164 + 4


def test_single_image_file_at_the_default_size(heads_run, odd_images, tmp_path):
    assert (
        train_ssl(
            [
                "predict",
                f"run={heads_run / 'export' / 'backbone.pt'}",
                f"images={odd_images / 'odd.jpg'}",
                f"out={tmp_path}",
            ]
        )
        == 0
    )
    size = 2 * 32  # twice the run's data.image_size
    assert np.load(tmp_path / "odd" / "depth.npy").shape == (size, round(91 * size / 37))
    assert json.loads((tmp_path / "predict.json").read_text())["size"] == size


def test_export_without_heads_is_a_one_line_error(simclr_run, odd_images, tmp_path, capsys):
    code = train_ssl(["predict", f"run={simclr_run}", f"images={odd_images}", f"out={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "'simclr'" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args, needle",
    [
        (["images={missing}"], "does not exist"),
        (["images={images}", "size=0"], "size: expected a positive integer (or null)"),
        (["images={images}", "batch=0"], "batch: expected a positive integer"),
        (["images={images}", "device=nonsense"], "device: 'nonsense' is not a device"),
        (["images={images}", "sise=3"], "sise"),
        (["{images}"], "expected key=value"),
        ([], "images: give images=PATH and/or zero_shot=true"),
    ],
)
def test_user_errors_are_one_line(heads_run, odd_images, tmp_path, capsys, args, needle):
    args = [a.format(missing=tmp_path / "nope", images=odd_images) for a in args]
    code = train_ssl(["predict", f"run={heads_run}", f"out={tmp_path / 'o'}", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert err.startswith("train-ssl predict: error: ") and not (tmp_path / "o").exists()


def test_all_unreadable_is_an_error(heads_run, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(b"nope")
    assert train_ssl(["predict", f"run={heads_run}", f"images={tmp_path}", f"out={tmp_path / 'o'}"]) == 2
    assert "none of the 1 images" in capsys.readouterr().err


def test_read_rgb_grayscale_rgba_and_16_bit(tmp_path):
    gray = np.arange(60, dtype=np.uint8).reshape(6, 10)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    rgb = read_rgb(tmp_path / "g.png")
    assert rgb.shape == (6, 10, 3) and (rgb == gray[..., None]).all()
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 0] = 200  # blue
    bgra[:, :2, 3] = 255
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    rgb = read_rgb(tmp_path / "a.png")
    assert (rgb[:, :2] == (0, 0, 200)).all() and (rgb[:, 2:] == 128).all()  # transparent: mid-grey
    cv2.imwrite(str(tmp_path / "w.png"), np.full((3, 3, 3), 65535, np.uint16))
    assert (read_rgb(tmp_path / "w.png") == 255).all()
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert read_rgb(tmp_path / "bad.jpg") is None


def test_feed_pads_to_the_stride_and_keeps_the_resized_image():
    rgb = np.random.default_rng(0).integers(0, 255, (37, 91, 3), dtype=np.uint8)
    fed = feed_image(rgb, 40, 32)
    assert fed.size == (40, 98) and fed.padded.shape == (64, 128, 3)
    assert (fed.padded[:40, :98] == fed.rgb).all()


def test_output_names_disambiguate_shared_stems(tmp_path):
    files = [tmp_path / "a.jpg", tmp_path / "a.png", tmp_path / "s" / "b.webp"]
    assert output_names(files, tmp_path) == ["a_jpg", "a_png", "s/b"]
