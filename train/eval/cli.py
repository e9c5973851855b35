"""``train-ssl eval``: evaluate exported backbones against baselines and write a report.

    train-ssl eval [CONFIG.yaml] backbone=RUN out=REPORT_DIR [benchmarks=[fashion-mnist,photo-patches]]
                   [shards=[HELDOUT_DIR]] [run=RUN_DIR] [compare=[other.pt]] [random=false] [key=value ...]

``backbone`` is a run folder (its export/), an export folder, or a backbone.pt with its
backbone.json (a bare backbone.pt is refused). Before any feature is extracted, the device,
every backbone and the report folder are checked (one line, exit 2); the report folder is held
by one command at a time (`synthssl.core.folder_lock`). Ctrl-C is one line, exit 130.

CONFIG.yaml is a file or a shipped config name (``eval``, ``eval_quick``); every key is
listed by ``train-ssl eval --help``. Writes ``REPORT_DIR/results.json``, ``REPORT_DIR/report.md`` and
PNG figures under ``REPORT_DIR/figures/`` (see :mod:`synthssl.train.eval.report`). The
random-init baseline is on by default. Same command, same machine -> same numbers
(seeded, deterministic CPU kernels).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from synthssl.core.config import ConfigError, help_lines, split_arguments, to_dict, to_yaml
from synthssl.core.errors import OutputWriteError
from synthssl.core.folder_lock import FolderInUseError, FolderLock
from synthssl.train.device import resolve_device
from synthssl.train.eval.backbones import EvalBackbone, load_eval_backbone, random_backbone, unique_name
from synthssl.train.eval.benchmarks import load_benchmark
from synthssl.train.eval.config import EvalConfig, load_eval_config
from synthssl.train.eval.dense_data import DenseViews, dense_shortfall, load_dense_views
from synthssl.train.eval.dense_probe import DenseProbeResult, run_dense_probes
from synthssl.train.eval.drawing import line_chart, write_png
from synthssl.train.eval.feature_cache import FeatureCache, backbone_fingerprint
from synthssl.train.eval.figures import (
    dense_examples_figure,
    embedding_figure,
    read_metrics_jsonl,
    training_curves_figure,
)
from synthssl.train.eval.heldout import held_out
from synthssl.train.eval.image_folder import list_images, read_rgb_square
from synthssl.train.eval.image_probe import run_image_probes
from synthssl.train.eval.report import markdown_report, write_json
from synthssl.train.eval.torchvision_sets import DatasetUnavailableError
from synthssl.train.export import atomic_write_text

__all__ = ["build_parser", "evaluate", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train-ssl eval",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="train-ssl eval [CONFIG.yaml] backbone=DIR out=DIR [key=value ...]",
        description="Evaluate exported backbones against random init and write a report. CONFIG.yaml: a file or a "
        "shipped config name (eval, eval_quick); key=value sets any key below (value parsed as YAML).",
        epilog="Keys:\n" + "\n".join(help_lines(EvalConfig)),
    )
    p.add_argument("words", nargs="*", metavar="CONFIG.yaml | key=value")
    p.add_argument("--print-config", action="store_true", help="print the merged config (YAML) and exit")
    return p


def _log(msg: str) -> None:
    print(f"[eval] {msg}", file=sys.stderr, flush=True)


def _warn(line: str) -> None:
    print(f"train-ssl eval: warning: {line}", file=sys.stderr, flush=True)


def _backbones(config: EvalConfig) -> list[EvalBackbone]:
    main = load_eval_backbone(config.backbone, "pretrained", option="backbone")
    out = [main]
    taken = {main.name}
    for path in config.compare:
        p = Path(path)
        directory = p.parent if p.name == "backbone.pt" else p
        # <run>/export/backbone.pt -> the run's name; other files -> their stem
        if directory.name == "export" and directory.parent.name:
            directory = directory.parent
        name = unique_name(p.stem if p.is_file() and p.name != "backbone.pt" else directory.name, taken)
        out.append(load_eval_backbone(p, name, main.meta, option="compare", warn=_warn))
        taken.add(name)
    if config.random:
        out.append(random_backbone(main.meta, config.seed, unique_name("random", taken)))
    return out


def _held_out(config: EvalConfig, backbones: list[EvalBackbone]) -> dict[str, dict]:
    """{backbone: {"held_out": True | False | None, "reason"}} for the dense probes' shards; random init
    (trained on nothing) is left out."""
    verdicts = {}
    for b in backbones:
        if b.source.startswith("random init"):
            continue
        v = held_out(config.shards, b.source, config.dense.split, config.dense.val_fraction)
        verdicts[b.name] = {"held_out": v.held_out, "reason": v.reason}
    return verdicts


def _pick_photos(paths: list[Path], count: int) -> list[Path]:
    """``count`` photos spread evenly over the sorted list, JPEGs (photographs) preferred
    over PNGs (often transparent or drawn wallpapers)."""
    jpegs = [p for p in paths if p.suffix.lower() in (".jpg", ".jpeg")]
    pool = jpegs if len(jpegs) >= count else paths
    if len(pool) <= count:
        return pool
    return [pool[int(i)] for i in np.linspace(0, len(pool) - 1, count).round()]


def _photos(config: EvalConfig, height: int, width: int) -> tuple[np.ndarray, list[str]]:
    rc = config.report
    if rc.photos <= 0 or not rc.photo_dir or not Path(rc.photo_dir).is_dir():
        return np.zeros((0, height, width, 3), np.uint8), []
    paths = _pick_photos(list_images(Path(rc.photo_dir)), rc.photos)
    imgs = []
    for p in paths:
        img = read_rgb_square(p, max(height, width))
        imgs.append(img[:height, :width] if height != width else img)
    return (np.stack(imgs) if imgs else np.zeros((0, height, width, 3), np.uint8)), [p.stem for p in paths]


def _dense_figures(
    results: dict[str, DenseProbeResult], test: DenseViews, config: EvalConfig, out: Path, device
) -> list[str]:
    figures = []
    _, first_view = np.unique(test.scene_index, return_index=True)
    rows = np.sort(first_view)[: config.report.scenes]
    photos, photo_names = _photos(config, test.rgb.shape[1], test.rgb.shape[2])
    rgb = np.concatenate([test.rgb[rows], photos])
    names = [f"scene {test.scene_ids[i]}" for i in rows] + photo_names
    for name, res in results.items():
        img = dense_examples_figure(
            res.probe,
            rgb,
            names,
            f"{name}: dense probes on held-out views and photos",
            test.depth[rows],
            test.normal[rows],
            test.contour[rows],
            len(rows),
            device,
            config.report.cell,
        )
        rel = f"figures/dense_examples_{name}.png"
        write_png(out / rel, img)
        figures.append(rel)
    window = max(1, min(10, min(len(r.loss_history) for r in results.values())))
    curves = {}
    for n, r in results.items():
        smooth = np.convolve(r.loss_history, np.ones(window) / window, mode="valid")
        curves[n] = (list(range(window, window + len(smooth))), smooth.tolist())
    write_png(
        out / "figures/dense_probe_training.png",
        line_chart(
            curves, f"dense probe training loss (4 tasks, mean of {window} steps)", ylabel="loss", size=(640, 360)
        ),
    )
    figures.append("figures/dense_probe_training.png")
    return figures


def evaluate(config: EvalConfig) -> dict:
    """Run every requested protocol on every backbone; write and return the results.

    Everything that can be checked first is: the keys, the device, the backbones and the report folder
    (a folder, writable, not in use by another command: it is held until the report is written).
    """
    if not config.backbone or not config.out:
        raise ConfigError(
            f"{'backbone' if not config.backbone else 'out'}: required; give backbone=RUN/export out=REPORT_DIR"
        )
    device = resolve_device(config.device, "device")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    specs = list(config.benchmarks)
    if not specs and not config.shards and not config.run:
        raise ConfigError(
            "benchmarks: nothing to do; give benchmarks=[fashion-mnist,photo-patches,...], "
            "shards=[DIR] and/or run=RUN_DIR"
        )
    if config.run and not (Path(config.run) / "metrics.jsonl").is_file():
        raise FileNotFoundError(f"run: {config.run}: no metrics.jsonl in this run directory")
    backbones = _backbones(config)
    lock = FolderLock(config.out, "out", kind="report folder").acquire()
    try:
        return _evaluate(config, backbones, device)
    finally:
        lock.release()
        lock.remove_folder_if_unused()


def _evaluate(config: EvalConfig, backbones: list[EvalBackbone], device) -> dict:
    """`evaluate` once its inputs are checked and the report folder is held."""
    out = Path(config.out)
    specs = list(config.benchmarks)
    results: dict = {
        "backbones": {
            b.name: {"source": b.source, "meta": b.meta, "fingerprint": backbone_fingerprint(b.encoder)[:16]}
            for b in backbones
        },
        "image": {},
        "figures": [],
    }
    for b in backbones:
        b.encoder.to(device)
    figures: list[str] = results["figures"]

    cache = FeatureCache(config.cache_dir or out / "cache")
    for spec in specs:
        t0 = time.perf_counter()
        train, test = load_benchmark(spec, folder_image_size=int(backbones[0].meta["image_size"]))
        dataset = train.name.split("/")[0]
        block = {
            "num_train": min(config.image.train_size, len(train)),
            "num_test": min(config.image.test_size, len(test)),
            "seeds": list(config.image.seeds),
            "metrics": {},
        }
        panels = {}
        for b in backbones:
            _log(f"{dataset}: image probes of {b.name}")
            res = run_image_probes(
                b.encoder,
                train,
                test,
                image_size=int(b.meta["image_size"]),
                mean=b.meta["mean"],
                std=b.meta["std"],
                config=config.image,
                device=device,
                cache=cache,
            )
            block["metrics"][b.name] = res.metrics
            n = config.report.embedding_points
            panels[b.name] = (res.embedding[:n], res.embedding_labels[:n])
        key = unique_name(dataset, set(results["image"]))
        results["image"][key] = block
        rel = f"figures/embedding_{key.replace(':', '_')}.png"
        write_png(out / rel, embedding_figure(panels, train.class_names, dataset))
        figures.append(rel)
        _log(f"{dataset}: done in {time.perf_counter() - t0:.1f} s")

    if config.shards:
        t0 = time.perf_counter()
        dc = config.dense
        train_v, test_v, categories = load_dense_views(
            config.shards,
            train_scenes=dc.train_scenes,
            test_scenes=dc.test_scenes,
            seed=dc.seed,
            split=dc.split,
            val_fraction=dc.val_fraction,
        )
        dense_results = {}
        for b in backbones:
            _log(f"dense probes of {b.name} ({len(train_v)} train / {len(test_v)} test views)")
            dense_results[b.name] = run_dense_probes(
                b.encoder,
                train_v,
                test_v,
                len(categories),
                mean=b.meta["mean"],
                std=b.meta["std"],
                config=dc,
                device=device,
                progress=f"dense probe {b.name}",
            )
        results["dense"] = {
            "head": dc.head,
            "num_train_views": len(train_v),
            "num_test_views": len(test_v),
            "categories": categories,
            "metrics": {n: r.metrics for n, r in dense_results.items()},
            "shards": [str(p) for p in config.shards],
            "held_out": _held_out(config, backbones),
        }
        shortfall = dense_shortfall(train_v, test_v, dc.train_scenes, dc.test_scenes)
        if shortfall:
            results["dense"]["shortfall"] = shortfall
            print(f"train-ssl eval: warning: {shortfall}", file=sys.stderr)
        figures += _dense_figures(dense_results, test_v, config, out, device)
        _log(f"dense probes: done in {time.perf_counter() - t0:.1f} s")

    if config.run:
        metrics_path = Path(config.run) / "metrics.jsonl"
        write_png(
            out / "figures/training_curves.png",
            training_curves_figure(read_metrics_jsonl(metrics_path), f"training curves: {config.run}"),
        )
        figures.append("figures/training_curves.png")

    results["config"] = to_dict(config)
    write_json(out / "results.json", results)
    atomic_write_text(markdown_report(results), out / "report.md")
    _log(f"wrote {out / 'report.md'}, {out / 'results.json'} and {len(figures)} figures")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``train-ssl eval`` (``argv`` without the ``eval`` word)."""
    try:
        args = build_parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
        config = load_eval_config(*split_arguments(args.words))
        if args.print_config:
            print(to_yaml(config), end="")
            return 0
        evaluate(config)
    except ConfigError as exc:
        print(f"train-ssl eval: config error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, DatasetUnavailableError, OutputWriteError, FolderInUseError) as exc:
        print(f"train-ssl eval: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "train-ssl eval: interrupted; the report was not written (extracted features stay in the cache)",
            file=sys.stderr,
        )
        return 130
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
