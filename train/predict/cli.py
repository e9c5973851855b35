"""``train-ssl predict``: depth, normals and contours of an export's heads on your own photos.

    train-ssl predict --run RUN_OR_EXPORT --images PATH [--out DIR] [--size N] [--device auto] [--batch N]
                      [--zero-shot [ROOT]]

For every image under PATH (one file or a folder tree of jpg/jpeg/png/webp) it writes
``OUT/<relative path without suffix>/``:

- ``depth.npy``   float32 [h, w]: relative z-depth (> 0, larger = farther; only ratios
  and order are meaningful on photos), ``depth.png``: viridis with a colour bar;
- ``normals.npy`` float32 [h, w, 3]: unit normals, OpenCV camera frame (x right, y down,
  z forward; facing the camera = negative z), ``normals.png``: RGB = (x, -y, -z)/2 + 0.5;
- ``contours.png``: contour probability x 255;

and ``OUT/contact_sheet.png`` (input | depth | normals | contours, one row per image,
at most 100 rows) and ``OUT/predict.json`` (what was written, what was skipped).
Unreadable images are skipped and listed at the end. ``--zero-shot`` also scores the
depth head on real ground truth (`synthssl.train.eval.middlebury`) and prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

import numpy as np

from synthssl.train.device import resolve_device
from synthssl.train.eval.drawing import write_png
from synthssl.train.eval.middlebury import DEFAULT_ROOT, load_motorcycle
from synthssl.train.export import NoHeadsError, atomic_save_npy, atomic_write_text
from synthssl.train.predict.feed import Fed, feed_image, to_tensor
from synthssl.train.predict.images import list_inputs, output_names, read_rgb
from synthssl.train.predict.maps import (
    contact_sheet,
    contour_rgb,
    depth_rgb,
    depth_with_colorbar,
    fit_square,
    normals_rgb,
)
from synthssl.train.predict.model import Predictor, load_predictor
from synthssl.train.predict.zero_shot import score_zero_shot

__all__ = ["build_parser", "main", "default_size", "SHEET_ROWS", "SHEET_CELL"]

SHEET_ROWS = 100  #: at most this many images on the contact sheet
SHEET_CELL = 160  #: contact sheet tile size (px)

_FEED_HELP = (
    "How images are fed: resized (aspect kept, area/bilinear) so that the shorter side is --size "
    "pixels, padded on the right/bottom by mirroring up to a multiple of the backbone's stride "
    "(32; 8 with the small stem), normalised as backbone.json says; the predictions are cropped "
    "back to the resized image, which is the resolution of every written map."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error is one line on stderr and exit 2."""
        print(f"train-ssl predict: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="train-ssl predict",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\n" + _FEED_HELP,
        epilog="\n\n".join(__doc__.split("\n\n")[2:]),
    )
    p.add_argument(
        "--run",
        required=True,
        metavar="RUN_OR_EXPORT",
        help="a run folder (with export/), an export folder or its backbone.pt; it needs heads.pt",
    )
    p.add_argument("--images", metavar="PATH", help="one image or a folder tree of jpg/jpeg/png/webp")
    p.add_argument("--out", default="out/predict", metavar="DIR", help="output folder (default: out/predict)")
    p.add_argument(
        "--size",
        type=_positive,
        default=None,
        metavar="N",
        help="shorter side of the fed image in pixels (default: twice the export's training "
        "image_size, e.g. 96 for the demo's 48 px; see docs/predict.md)",
    )
    p.add_argument("--device", default="auto", help="torch device: auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument(
        "--batch",
        type=_positive,
        default=8,
        metavar="N",
        help="images per forward pass (images of one fed shape are batched; default: 8)",
    )
    p.add_argument(
        "--zero-shot",
        nargs="?",
        const=str(DEFAULT_ROOT),
        default=None,
        metavar="ROOT",
        help="score the depth head on real ground truth (Middlebury 2014 Motorcycle; default root "
        f"{DEFAULT_ROOT}, unpacked by scripts/setup.sh); prints JSON, writes OUT/zero_shot.json",
    )
    return p


def default_size(meta: dict) -> int:
    """The default --size: twice the export's training image_size (scenes at about the scale
    the heads saw; zero-shot depth gets worse as the size grows past it, docs/predict.md)."""
    return 2 * int(meta["image_size"])


class _Progress:
    """A tqdm bar on a terminal, one plain line per image elsewhere (both on stderr)."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", desc="predict", dynamic_ncols=True)

    def step(self, label: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        else:
            print(f"[predict] {self.done}/{self.total} {label}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_maps(folder: Path, depth: np.ndarray, normal: np.ndarray, contour: np.ndarray) -> None:
    """depth [h, w], normal [3, h, w], contour [h, w] -> the five files of one image."""
    atomic_save_npy(depth.astype(np.float32), folder / "depth.npy")
    write_png(folder / "depth.png", depth_with_colorbar(depth))
    atomic_save_npy(np.ascontiguousarray(np.transpose(normal, (1, 2, 0)), dtype=np.float32), folder / "normals.npy")
    write_png(folder / "normals.png", normals_rgb(normal))
    write_png(folder / "contours.png", contour_rgb(contour))


def _predict_images(predictor: Predictor, files: list[Path], names: list[str], args, device) -> dict:
    out = Path(args.out)
    records, skipped, tiles, tile_names = [], [], [], []
    pending: list[tuple[int, Fed, tuple[int, int]]] = []
    progress = _Progress(len(files))

    def flush() -> None:
        x = to_tensor([f.padded for _, f, _ in pending], predictor.mean, predictor.std).to(device)
        pred = {k: v.cpu().numpy() for k, v in predictor(x).items()}
        for j, (i, fed, original) in enumerate(pending):
            h, w = fed.size
            depth, normal, contour = pred["depth"][j, :h, :w], pred["normal"][j, :, :h, :w], pred["contour"][j, :h, :w]
            _write_maps(out / names[i], depth, normal, contour)
            records.append({"file": str(files[i]), "out": names[i], "original": list(original), "maps": [h, w]})
            if len(tiles) < SHEET_ROWS:
                tiles.append(
                    [
                        fit_square(t, SHEET_CELL)
                        for t in (fed.rgb, depth_rgb(depth), normals_rgb(normal), contour_rgb(contour))
                    ]
                )
                tile_names.append(Path(names[i]).name)
            progress.step(f"{files[i]} ({original[1]}x{original[0]} -> {w}x{h})")
        pending.clear()

    try:
        for i, path in enumerate(files):
            rgb = read_rgb(path)
            if rgb is None:
                skipped.append(str(path))
                progress.step(f"{path}: unreadable, skipped")
                continue
            fed = feed_image(rgb, args.size, predictor.multiple)
            if pending and (len(pending) >= args.batch or pending[0][1].padded.shape != fed.padded.shape):
                flush()
            pending.append((i, fed, rgb.shape[:2]))
        if pending:
            flush()
    finally:
        progress.close()
    summary = {"images": records, "skipped": skipped, "contact_sheet": None}
    if tiles:
        title = f"{predictor.meta['method']} ({predictor.meta['steps']} steps): {len(records)} images" + (
            f", first {SHEET_ROWS} shown" if len(records) > SHEET_ROWS else ""
        )
        write_png(out / "contact_sheet.png", contact_sheet(tiles, tile_names, title, SHEET_CELL))
        summary["contact_sheet"] = "contact_sheet.png"
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``train-ssl predict``; 0 = done, 2 = user error (one line on stderr)."""
    args = build_parser().parse_args(argv)
    if args.images is None and args.zero_shot is None:
        print("train-ssl predict: error: give --images PATH and/or --zero-shot", file=sys.stderr)
        return 2
    try:
        device = resolve_device(args.device, "--device")
        predictor = load_predictor(args.run, device)
        files, root = list_inputs(args.images) if args.images is not None else ([], None)
        real = load_motorcycle(args.zero_shot) if args.zero_shot is not None else None
    except (FileNotFoundError, ValueError, NoHeadsError) as exc:
        print(f"train-ssl predict: error: {exc}", file=sys.stderr)
        return 2
    if args.size is None:
        args.size = default_size(predictor.meta)
    out = Path(args.out)
    summary: dict = {
        "export": str(Path(args.run)),
        "method": predictor.meta["method"],
        "steps": predictor.meta["steps"],
        "size": args.size,
        "device": str(device),
    }
    if files:
        summary.update(_predict_images(predictor, files, output_names(files, root), args, device))
        if not summary["images"]:
            print(
                f"train-ssl predict: error: none of the {len(files)} images under {args.images} could be read",
                file=sys.stderr,
            )
            return 2
    if real is not None:
        summary["zero_shot"] = score_zero_shot(predictor, real, args.size, device)
        atomic_write_text(json.dumps(summary["zero_shot"], indent=2) + "\n", out / "zero_shot.json")
        print(json.dumps(summary["zero_shot"]))
    atomic_write_text(json.dumps(summary, indent=2) + "\n", out / "predict.json")
    if files:
        print(
            f"[predict] {len(summary['images'])} images -> {out}; contact sheet {out / 'contact_sheet.png'}",
            file=sys.stderr,
        )
    if summary.get("skipped"):
        print(f"[predict] skipped {len(summary['skipped'])} unreadable file(s):", file=sys.stderr)
        for path in summary["skipped"]:
            print(f"  {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
