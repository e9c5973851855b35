"""``render-scenes``: render view-pair shards, validate them, preview them.

Usage::

    render-scenes [--config X.yaml] --out DIR [--scenes N --size 128 --views 2 --seed S
                  --workers W --shard-size K --physics/--no-physics --assets DIR ...
                  --backend auto|egl|osmesa --shard-index i --num-shards n --resume
                  --deep --preview sheet.png --quiet/--verbose] [--set dotted.key=value ...]
    render-scenes validate DIR [DIR...] [--deep]
    render-scenes index DIR
    render-scenes preview DIR --out sheet.png [--scenes 4]

Flags override the YAML config (default: the embedded render/configs/default.yaml);
``--set`` overrides any key (YAML syntax for the value, e.g. ``--set camera.overlap=[0.4,0.8]``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import yaml

from synthssl.dataset.console import setup_logging
from synthssl.dataset.errors import OutputWriteError, ShardFormatError
from synthssl.dataset.extras import require_extra
from synthssl.dataset.yaml_numbers import safe_load

from .config import ConfigError, load_config


def _render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="render-scenes", description="Render random 3D scenes into view-pair HDF5 shards "
                                "(subcommands: 'validate DIR', 'index DIR', 'preview DIR --out sheet.png').")
    p.add_argument("--config", help="YAML render config (default: the embedded default.yaml)")
    p.add_argument("--out", help="output directory for shard-*.h5 and manifest.json")
    p.add_argument("--scenes", type=int)
    p.add_argument("--size", type=int, help="image height = width in pixels")
    p.add_argument("--views", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="rendering processes (each with its own GL context)")
    p.add_argument("--shard-size", type=int, dest="shard_size")
    p.add_argument("--physics", action=argparse.BooleanOptionalAction, default=None,
                   help="settle objects with pybullet (default from config)")
    p.add_argument("--assets", nargs="+", metavar="DIR", help="extra folders of OBJ/GLB/PLY/STL meshes")
    p.add_argument("--backend", choices=("auto", "egl", "osmesa"))
    p.add_argument("--shard-index", type=int, dest="shard_index")
    p.add_argument("--num-shards", type=int, dest="num_shards")
    p.add_argument("--compression", help="gzip (default: deflate + shuffle, any HDF5 reader) | gzip:N | lzf | none")
    p.add_argument("--resume", action="store_true", help="skip shards that are already finished (after verifying them)")
    p.add_argument("--deep", action="store_true",
                   help="with --resume, verify skipped shards fully (every scene and the manifest checksum)")
    p.add_argument("--preview", metavar="PNG", help="also write a contact sheet of the first scenes")
    p.add_argument("--no-progress", action="store_true", help="no bar on a terminal, no progress lines off one")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")
    loud.add_argument("-v", "--verbose", action="store_true", help="print debug detail too")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    return p


def _overrides(args: argparse.Namespace) -> dict:
    o = {}
    for key in ("out", "scenes", "size", "views", "seed", "workers", "shard_size", "backend", "shard_index",
                "num_shards", "compression"):
        value = getattr(args, key)
        if value is not None:
            o[key] = value
    if args.physics is not None:
        o["physics.enabled"] = args.physics
    if args.assets:
        o["objects.asset_dirs"] = list(args.assets)
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set: expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            o[key.strip()] = safe_load(value)  # 1e-3 is a number
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key.strip()}: cannot parse {value!r} as YAML ({exc})") from None
    return o


def render_main(argv: list[str]) -> int:
    args = _render_parser().parse_args(argv)
    log = setup_logging("render-scenes", -1 if args.quiet else 1 if args.verbose else 0)
    try:
        cfg = load_config(args.config, _overrides(args))
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    if not cfg.out:
        log.error("--out DIR is required (or 'out:' in the config)")
        return 2
    from .gl_compat import BackendError
    from .pipeline import RenderWorkerError, render_dataset

    try:
        summary = render_dataset(cfg, resume=args.resume, progress=not args.no_progress, deep=args.deep)
    except BackendError as exc:
        log.error("%s", exc)
        return 3
    except (ConfigError, ShardFormatError, OutputWriteError) as exc:  # another render in --out, a full disk...
        log.error("%s", exc)
        return 2
    except RenderWorkerError as exc:  # a worker was killed (OOM killer, signal): finished shards are kept
        log.error("%s", exc)
        return 1
    result = summary.to_dict()
    if args.preview:
        from .preview import contact_sheet

        result["preview"] = str(contact_sheet(cfg.out, args.preview))
    print(json.dumps(result))
    return 0


def validate_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="render-scenes validate", description="Check shards against the format "
                                "(several folders: also that they can be read together).")
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
    where = {"directory": summaries[0]["directory"]} if len(summaries) == 1 else \
        {"directories": [s["directory"] for s in summaries]}
    print(json.dumps({"valid": True, **where, "num_shards": sum(s["num_shards"] for s in summaries),
                      "num_scenes": sum(s["num_scenes"] for s in summaries), "tmp_files": leftovers}))
    return 0


def index_main(argv: list[str]) -> int:
    """Merge the per-shard sidecars of DIR into manifest.json (after a kill, or array jobs)."""
    p = argparse.ArgumentParser(prog="render-scenes index", description="Merge the shards' sidecar records into "
                                "DIR/manifest.json (after array jobs, or a killed run).")
    p.add_argument("directory")
    args = p.parse_args(argv)
    setup_logging("render-scenes")
    from synthssl.dataset.manifest import index_folder, shard_files

    if not os.path.isdir(args.directory):
        print(f"render-scenes index: {args.directory}: not a directory", file=sys.stderr)
        return 2
    if not shard_files(args.directory):
        print(f"render-scenes index: {args.directory}: no shard-*.h5 files (in it or its subfolders)", file=sys.stderr)
        return 2
    try:
        m = index_folder(args.directory)
    except OSError as exc:
        print(f"render-scenes index: {OutputWriteError(os.path.join(args.directory, 'manifest.json'), exc)}",
              file=sys.stderr)
        return 2
    print(json.dumps({"directory": args.directory, "num_shards": m["num_shards"], "num_scenes": m["num_scenes"],
                      "category_tables": len(m["category_tables"])}))
    return 0


def preview_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="render-scenes preview", description="PNG contact sheet of a shard directory.")
    p.add_argument("directory")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--scenes", type=int, default=4)
    args = p.parse_args(argv)
    from .preview import contact_sheet

    print(json.dumps({"preview": str(contact_sheet(args.directory, args.out, scenes=args.scenes))}))
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
