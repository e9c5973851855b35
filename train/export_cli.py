"""``train-ssl export``: write a run's export from its latest (or a named) checkpoint, at any time.

    train-ssl export RUN [checkpoint=PATH] [out=DIR]

Writes ``DIR`` (default ``RUN/export``): backbone.pt, heads.pt when the method trains heads, and
backbone.json, as the run itself writes at its end (`synthssl.train.run_export`). The run is not
touched, so this works while it trains; ``train-ssl eval backbone=RUN`` and ``train-ssl predict
run=RUN`` then take the export. Exit codes: 0 done, 2 a user mistake (one line), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from synthssl.core.config import ConfigError, KeyValueParser, apply_override, build, help_lines, split_arguments

__all__ = ["ExportOptions", "build_parser", "main"]


@dataclass(frozen=True)
class ExportOptions:
    """What ``train-ssl export`` exports, and where to."""

    run: Optional[str] = None
    """the run folder (train.out of a train-ssl run; also the first word without '=') (required)."""
    checkpoint: Optional[str] = None
    """the checkpoint to export: a file, or a name inside the run folder (default: RUN/checkpoint.pt, the latest)."""
    out: Optional[str] = None
    """the export folder written (default: RUN/export); an export of more steps there is never replaced."""


def build_parser() -> KeyValueParser:
    p = KeyValueParser(
        prog="train-ssl export",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="train-ssl export RUN [checkpoint=PATH] [out=DIR]",
        description="Write a run's export from its latest (or a named) checkpoint: backbone.pt, heads.pt (when the "
        "method trains heads) and backbone.json, as the run writes at its end, without touching the run (it may "
        "still be training). eval backbone=RUN and predict run=RUN then take it.",
        epilog="Keys:\n" + "\n".join(help_lines(ExportOptions)),
    )
    p.add_argument("words", nargs="*", metavar="RUN | key=value")
    return p


def parse_options(words: Sequence[str]) -> ExportOptions:
    """``RUN key=value ...`` -> `ExportOptions` (ConfigError naming the key)."""
    run, overrides = split_arguments(words)
    tree: dict = {"run": run} if run is not None else {}
    for item in overrides:
        apply_override(tree, item)
    options = build(ExportOptions, tree)
    if not options.run:
        raise ConfigError("run: required; give the run folder: train-ssl export RUN")
    return options


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``train-ssl export`` (``argv`` without the ``export`` word)."""
    from synthssl.core.console import one_line
    from synthssl.core.errors import OutputWriteError
    from synthssl.core.folder_lock import FolderInUseError
    from synthssl.train.run_export import export_checkpoint

    try:
        words = build_parser().parse_words(argv)
    except SystemExit as exc:  # --help (0), or a usage error or -flag (2, one line)
        return int(exc.code or 0)
    try:
        options = parse_options(words)
        written = export_checkpoint(options.run, options.checkpoint, options.out)
    except (ConfigError, FileNotFoundError, ValueError, OutputWriteError, FolderInUseError) as exc:
        print(f"train-ssl export: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train-ssl export: interrupted; the export folder keeps what it held", file=sys.stderr)
        return 130
    files = "backbone.pt, heads.pt, backbone.json" if written.heads else "backbone.pt, backbone.json"
    print(f"train-ssl export: step {written.step} of {written.checkpoint} -> {written.folder} ({files})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
