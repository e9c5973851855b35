"""``train-ssl predict``: depth, normals and contours of an export's heads on your own photos.

    train-ssl predict run=RUN images=PATH [out=DIR] [size=N] [device=auto] [batch=N]
                      [zero_shot=true [zero_shot_data=middlebury|castel] [zero_shot_root=ROOT]]

RUN is a run folder (its export/), an export folder, or a backbone.pt with its backbone.json;
the export needs heads.pt (methods that train property heads). For every image under PATH
(one file or a folder tree of jpg/jpeg/png/webp) it writes ``OUT/<relative path without suffix>/``:

- ``depth.npy``   float32 [h, w]: relative z-depth (> 0, larger = farther; only ratios
  and order are meaningful on photos), ``depth.png``: viridis with a colour bar;
- ``normals.npy`` float32 [h, w, 3]: unit normals, OpenCV camera frame (x right, y down,
  z forward; facing the camera = negative z), ``normals.png``: RGB = (x, -y, -z)/2 + 0.5;
- ``contours.png``: contour probability x 255;

and ``OUT/contact_sheet.png`` (input | depth | normals | contours, one row per image,
at most 100 rows) and ``OUT/predict.json`` (what was written, what was skipped).
Unreadable images are skipped and listed at the end. ``zero_shot=true`` also scores the
depth head on real ground truth (`synthssl.train.predict.zero_shot`: Middlebury 2014
Motorcycle, or ViSP's castel RGB-D frames) and prints JSON.
OUT is held by one command at a time (`synthssl.core.folder_lock`); a mistake in any key
is one line and exit 2 before the model is loaded; Ctrl-C is one line and exit 130.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from synthssl.core.config import ConfigError, KeyValueParser, apply_override, build, help_lines, need, split_arguments
from synthssl.core.errors import OutputWriteError
from synthssl.core.folder_lock import FolderInUseError, FolderLock
from synthssl.train.device import resolve_device
from synthssl.train.eval.drawing import write_png
from synthssl.train.export import NoHeadsError, atomic_save_npy, atomic_write_text, find_export
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
from synthssl.train.predict.zero_shot import ZERO_SHOT_DATA, load_zero_shot, score_zero_shot_set

__all__ = ["PredictConfig", "build_parser", "parse_config", "main", "default_size", "SHEET_ROWS", "SHEET_CELL"]

SHEET_ROWS = 100  #: at most this many images on the contact sheet
SHEET_CELL = 160  #: contact sheet tile size (px)

_FEED_HELP = (
    "How images are fed: resized (aspect kept, area/bilinear) so that the shorter side is `size` "
    "pixels, padded on the right/bottom by mirroring up to a multiple of the backbone's stride "
    "(32; 8 with the small stem), normalised as backbone.json says; the predictions are cropped "
    "back to the resized image, which is the resolution of every written map."
)


@dataclass(frozen=True)
class PredictConfig:
    """The keys of ``train-ssl predict key=value ...``."""

    run: Optional[str] = None
    """a run folder (its export/), an export folder, or a backbone.pt with backbone.json; needs heads.pt (required)."""
    images: Optional[str] = None
    """one image or a folder tree of jpg/jpeg/png/webp (images and/or zero_shot=true)."""
    out: str = "out/predict"
    """output folder."""
    size: Optional[int] = None
    """shorter side of the fed image in pixels (null: twice the export's training image_size; docs/predict.md)."""
    device: str = "auto"
    """torch device: auto (cuda when available), cpu, cuda or cuda:N."""
    batch: int = 8
    """images per forward pass (images of one fed shape are batched)."""
    zero_shot: bool = False
    """also score the depth head on real ground truth (zero_shot_data); prints JSON, writes OUT/zero_shot.json."""
    zero_shot_data: str = "middlebury"
    """the real depth: middlebury (Middlebury 2014 Motorcycle, one image) or castel (ViSP's 30 RGB-D frames;
    apt-get install visp-images-data)."""
    zero_shot_root: Optional[str] = None
    """folder of the zero_shot_data files (null: /usr/share/synthssl/middlebury-motorcycle, unpacked by
    scripts/setup.sh, or /usr/share/visp-images-data/ViSP-images/mbt-depth/castel)."""

    def check(self) -> None:
        need(self.size is None or self.size >= 1, "size", "a positive integer (or null)")
        need(self.batch >= 1, "batch", "a positive integer")
        need(self.zero_shot_data in ZERO_SHOT_DATA, "zero_shot_data", " or ".join(ZERO_SHOT_DATA))


def build_parser() -> KeyValueParser:
    p = KeyValueParser(
        prog="train-ssl predict",
        usage="train-ssl predict run=RUN images=PATH [key=value ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(__doc__ or "").split("\n\n")[0] + "\n\n" + _FEED_HELP,
        epilog="Keys (key=value, value parsed as YAML):\n"
        + "\n".join(help_lines(PredictConfig))
        + "\n\n"
        + "\n\n".join((__doc__ or "").split("\n\n")[2:]),
    )
    p.add_argument("words", nargs="*", metavar="key=value")
    return p


def parse_config(words: Sequence[str]) -> PredictConfig:
    """``key=value ...`` -> the checked `PredictConfig` (ConfigError naming the key)."""
    config, overrides = split_arguments(words)
    if config is not None:
        raise ConfigError(f"{config!r}: expected key=value (e.g. run={config}); see train-ssl predict --help")
    tree: dict = {}
    for item in overrides:
        apply_override(tree, item)
    cfg = build(PredictConfig, tree)
    if not cfg.run:
        raise ConfigError("run: required; give run=RUN (a run folder, an export folder or a backbone.pt)")
    if cfg.images is None and not cfg.zero_shot:
        raise ConfigError("images: give images=PATH and/or zero_shot=true")
    return cfg


def default_size(meta: dict) -> int:
    """The default ``size``: twice the export's training image_size (scenes at about the scale
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


def _predict_images(
    predictor: Predictor, files: list[Path], names: list[str], cfg: PredictConfig, size: int, device
) -> dict:
    out = Path(cfg.out)
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
            fed = feed_image(rgb, size, predictor.multiple)
            if pending and (len(pending) >= cfg.batch or pending[0][1].padded.shape != fed.padded.shape):
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
    """Entry point of ``train-ssl predict``; 0 = done, 2 = user error (one line on stderr), 130 = Ctrl-C."""
    try:
        words = build_parser().parse_words(argv)
    except SystemExit as exc:  # --help (0), or a usage error or -flag (2, one line)
        return int(exc.code or 0)
    lock: Optional[FolderLock] = None
    try:
        cfg = parse_config(words)
        device = resolve_device(cfg.device, "device")
        export = find_export(cfg.run, "run")
        files, root = list_inputs(cfg.images) if cfg.images is not None else ([], None)
        real = load_zero_shot(cfg.zero_shot_data, cfg.zero_shot_root) if cfg.zero_shot else None
        predictor = load_predictor(export, device)
        lock = FolderLock(cfg.out, "out", kind="folder for the maps").acquire()  # before any image is fed
        return _run(cfg, predictor, files, root, real, device)
    except (ConfigError, FileNotFoundError, ValueError, NoHeadsError, OutputWriteError, FolderInUseError) as exc:
        print(f"train-ssl predict: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train-ssl predict: interrupted; the maps written so far are complete files", file=sys.stderr)
        return 130
    finally:
        if lock is not None:
            lock.release()
            lock.remove_folder_if_unused()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _run(cfg: PredictConfig, predictor: Predictor, files: list[Path], root, real, device) -> int:
    """Feed the images, score zero-shot depth, write predict.json; returns the exit code."""
    size = cfg.size if cfg.size is not None else default_size(predictor.meta)
    out = Path(cfg.out)
    summary: dict = {
        "export": str(Path(cfg.run)),
        "method": predictor.meta["method"],
        "steps": predictor.meta["steps"],
        "size": size,
        "device": str(device),
    }
    if files:
        summary.update(_predict_images(predictor, files, output_names(files, root), cfg, size, device))
        if not summary["images"]:
            print(
                f"train-ssl predict: error: none of the {len(files)} images under {cfg.images} could be read",
                file=sys.stderr,
            )
            return 2
    if real is not None:
        summary["zero_shot"] = score_zero_shot_set(predictor, cfg.zero_shot_data, real, size, device)
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
