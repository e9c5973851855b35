"""``render-scenes``: render view-pair shards, validate them, preview them.

Usage::

    render-scenes [CONFIG.yaml] key=value ... [--resume [--deep]] [--preview sheet.png] [--no-progress]
                  [--quiet | --verbose] [--print-config]
    render-scenes validate DIR [DIR...] [--deep]
    render-scenes index DIR
    render-scenes preview DIR --out sheet.png [--scenes 4]

CONFIG.yaml is a file (with ``base:`` includes) or a shipped config name (``demo``);
without one the defaults of `synthssl.render.config` apply. ``key=value`` sets any key,
the value parsed as YAML (``scenes=1000``, ``camera.overlap=[0.4,0.8]``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TYPE_CHECKING

from synthssl.core.config import help_lines, split_arguments, to_yaml
from synthssl.core.console import setup_logging
from synthssl.core.errors import OutputWriteError
from synthssl.core.extras import require_extra
from synthssl.dataset.errors import ShardFormatError

from .config import SHIPPED_CONFIGS, ConfigError, RenderConfig, load_config

if TYPE_CHECKING:
    from .interrupt import InterruptOnce


def _render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="render-scenes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="render-scenes [CONFIG.yaml] [key=value ...] [options]",
        description="Render random 3D scenes into view-pair HDF5 shards (subcommands: 'validate DIR', 'index DIR', "
        "'preview DIR --out sheet.png'). CONFIG.yaml: a file or a shipped config name "
        f"({', '.join(sorted(p.stem for p in SHIPPED_CONFIGS.glob('*.yaml')))}); key=value sets any "
        "key below (value parsed as YAML, e.g. camera.overlap=[0.4,0.8]).",
        epilog="Keys (units: metres, degrees; ranges [low, high]):\n" + "\n".join(help_lines(RenderConfig)),
    )
    p.add_argument("words", nargs="*", metavar="CONFIG.yaml | key=value")
    p.add_argument("--resume", action="store_true", help="skip shards that are already finished (after verifying them)")
    p.add_argument(
        "--deep",
        action="store_true",
        help="with --resume, verify skipped shards fully (every scene and the manifest checksum)",
    )
    p.add_argument("--preview", metavar="PNG", help="also write a contact sheet of the first scenes")
    p.add_argument("--no-progress", action="store_true", help="no bar on a terminal, no progress lines off one")
    p.add_argument("--print-config", action="store_true", help="print the merged config (YAML) and exit")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")
    loud.add_argument("-v", "--verbose", action="store_true", help="print debug detail too")
    return p


def render_main(argv: list[str]) -> int:
    log = setup_logging(
        "render-scenes",
        -1 if ("-q" in argv or "--quiet" in argv) else 1 if ("-v" in argv or "--verbose" in argv) else 0,
    )
    try:
        args = _render_parser().parse_intermixed_args(argv)
        config, overrides = split_arguments(args.words)
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    if not cfg.out:
        log.error("out: required; give out=DIR (or 'out:' in the config)")
        return 2
    from .interrupt import EXIT_INTERRUPTED, InterruptOnce

    with InterruptOnce() as interrupt:
        try:
            return _render(cfg, args, log, interrupt)
        except KeyboardInterrupt as exc:  # RenderInterrupted says what is kept; before it, nothing was touched
            before = f"interrupted (Ctrl-C) before rendering began; {cfg.out} is left as it was found"
            log.error("%s", str(exc) or before)
            return EXIT_INTERRUPTED


def _render(cfg: RenderConfig, args: argparse.Namespace, log: logging.Logger, interrupt: "InterruptOnce") -> int:
    """Check the ``--preview`` target, render ``cfg``, write the preview, print the summary; the exit status.
    Ctrl-C ends it with a KeyboardInterrupt, also one that arrived while the render modules were imported."""
    from .gl_compat import BackendError
    from .interrupt import EXIT_INTERRUPTED
    from .pipeline import render_dataset
    from .preflight import check_preview_target
    from .worker_pool import RenderWorkerError

    interrupt.check()  # trimesh's imports catch every exception: a Ctrl-C during them is only recorded
    try:
        if args.preview:
            check_preview_target(args.preview)  # before the render, not after it
        summary = render_dataset(cfg, resume=args.resume, progress=not args.no_progress, deep=args.deep)
    except BackendError as exc:
        log.error("%s", exc)
        return 3
    except (ConfigError, ShardFormatError, OutputWriteError) as exc:  # another render in out, a full disk...
        log.error("%s", exc)
        return 2
    except RenderWorkerError as exc:  # a worker was killed (OOM killer, signal): finished shards are kept
        log.error("%s", exc)
        return 1
    result = summary.to_dict()
    if args.preview:
        from .preview import contact_sheet

        try:
            result["preview"] = str(contact_sheet(cfg.out, args.preview))
        except (OSError, ValueError, OutputWriteError) as exc:  # the render itself is complete
            log.error(
                "%s; the render in %s is complete: write the sheet with render-scenes preview %s --out PNG",
                OutputWriteError(args.preview, exc) if isinstance(exc, OSError) else exc,
                cfg.out,
                cfg.out,
            )
            return 2
        except KeyboardInterrupt:
            log.error("interrupted (Ctrl-C) while writing the preview; the render in %s is complete", cfg.out)
            return EXIT_INTERRUPTED
    print(json.dumps(result))
    return 0


def validate_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="render-scenes validate",
        description="Check shards against the format (several folders: also that they can be read together).",
    )
    p.add_argument("directory", nargs="+", help="render folder(s)")
    p.add_argument("--deep", action="store_true", help="read every scene, check values and checksums")
    args = p.parse_args(argv)
    from synthssl.dataset.errors import MixedShardsError
    from synthssl.dataset.manifest import tmp_files
    from synthssl.dataset.validate import validate_directories

    leftovers = [p.name for d in args.directory if os.path.isdir(d) for p in tmp_files(d)]
    if leftovers:  # not part of the data; the next render-scenes run in the folder removes dead writers' ones
        print(f"render-scenes validate: {len(leftovers)} temporary file(s): {', '.join(leftovers)}", file=sys.stderr)
    try:
        summaries = validate_directories(args.directory, deep=args.deep)
    except MixedShardsError as exc:  # shards that cannot be read together: a usage mistake (exit 2)
        print(f"render-scenes validate: INVALID: {exc}", file=sys.stderr)
        return 2
    except ShardFormatError as exc:
        print(f"render-scenes validate: INVALID: {exc}", file=sys.stderr)
        return 1
    where = (
        {"directory": summaries[0]["directory"]}
        if len(summaries) == 1
        else {"directories": [s["directory"] for s in summaries]}
    )
    print(
        json.dumps(
            {
                "valid": True,
                **where,
                "num_shards": sum(s["num_shards"] for s in summaries),
                "num_scenes": sum(s["num_scenes"] for s in summaries),
                "tmp_files": leftovers,
            }
        )
    )
    return 0


def index_main(argv: list[str]) -> int:
    """Merge the per-shard sidecars of DIR into manifest.json (after a kill, or array jobs)."""
    p = argparse.ArgumentParser(
        prog="render-scenes index",
        description="Merge the shards' sidecar records into DIR/manifest.json (after array jobs, or a killed run).",
    )
    p.add_argument("directory")
    args = p.parse_args(argv)
    setup_logging("render-scenes")
    from synthssl.dataset.layout import shard_relpaths
    from synthssl.dataset.manifest import index_folder

    if not os.path.isdir(args.directory):
        print(f"render-scenes index: {args.directory}: not a directory", file=sys.stderr)
        return 2
    if not shard_relpaths(args.directory):
        print(f"render-scenes index: {args.directory}: no shard-*.h5 files (in it or its subfolders)", file=sys.stderr)
        return 2
    try:
        m = index_folder(args.directory)
    except OSError as exc:
        print(
            f"render-scenes index: {OutputWriteError(os.path.join(args.directory, 'manifest.json'), exc)}",
            file=sys.stderr,
        )
        return 2
    print(
        json.dumps(
            {
                "directory": args.directory,
                "num_shards": m["num_shards"],
                "num_scenes": m["num_scenes"],
                "category_tables": len(m["category_tables"]),
            }
        )
    )
    return 0


def preview_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="render-scenes preview", description="PNG contact sheet of a shard directory.")
    p.add_argument("directory")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--scenes", type=int, default=4)
    args = p.parse_args(argv)
    from .preflight import check_preview_target
    from .preview import contact_sheet

    prog = "render-scenes preview"
    if not os.path.isdir(args.directory):
        print(f"{prog}: {args.directory}: not a directory (a render folder of render-scenes out=DIR)", file=sys.stderr)
        return 2
    if args.scenes < 1:
        print(f"{prog}: --scenes: expected a whole number >= 1, got {args.scenes}", file=sys.stderr)
        return 2
    try:
        check_preview_target(args.out)
        sheet = contact_sheet(args.directory, args.out, scenes=args.scenes)
    except (FileNotFoundError, ShardFormatError, ValueError, OutputWriteError) as exc:  # no shards, a bad shard
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the sheet could not be written (full disk)
        print(f"{prog}: {OutputWriteError(args.out, exc)}", file=sys.stderr)
        return 2
    print(json.dumps({"preview": str(sheet)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "validate":
        return validate_main(argv[1:])
    if argv and argv[0] == "index":
        return index_main(argv[1:])
    require_extra("render", "render-scenes")  # validate and index (above) work from a plain install; the rest renders
    if argv and argv[0] == "preview":
        return preview_main(argv[1:])
    if argv and argv[0] == "render":
        argv = argv[1:]
    return render_main(argv)


if __name__ == "__main__":
    sys.exit(main())
