"""``train-ssl``: train a method from a YAML config with dotted overrides.

    train-ssl CONFIG.yaml [dotted.key=value ...] [--resume] [--print-config]
    train-ssl eval ...        (dispatches to synthssl.train.eval.cli.main)
    train-ssl predict ...     (dispatches to synthssl.train.predict.cli.main)
    torchrun --nproc-per-node 8 -m synthssl.train.cli CONFIG.yaml ...   (DDP)
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from synthssl.train.config import ConfigError, help_lines, load_config

_EPILOG_HEAD = """Options (set in the YAML file or as dotted overrides, e.g. optim.lr=0.1):
"""


def _method_help() -> list[str]:
    import dataclasses

    from synthssl.train.methods.registry import METHODS, method_class

    lines = ["[method]  method.name selects one of: " + ", ".join(METHODS)]
    for name in METHODS:
        try:
            cls = method_class(name)
        except ValueError as exc:
            lines.append(f"  {name}: not available ({exc})")
            continue
        opts = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls.Config)
                         if f.default is not dataclasses.MISSING)
        lines.append(f"  method.name={name}: {opts}")
    return lines


def build_parser(with_method_help: bool = False) -> argparse.ArgumentParser:
    """The argparse parser; the epilog lists every config option (and each method's with --help)."""
    epilog = _EPILOG_HEAD + "\n".join(help_lines())
    if with_method_help:
        epilog += "\n" + "\n".join(_method_help())
    parser = argparse.ArgumentParser(
        prog="train-ssl", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a self-supervised backbone on rendered view pairs (synthssl). "
                    "`train-ssl eval --help` for evaluation.",
        epilog=epilog)
    parser.add_argument("config", help="YAML config (see train/configs/)")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides (value parsed as YAML)")
    parser.add_argument("--resume", action="store_true", help="continue the run in train.out from its checkpoint")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``train-ssl``; returns the exit code (2 = config error, 130 = interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "eval":
        from synthssl.train.eval.cli import main as eval_main

        return eval_main(argv[1:])
    if argv and argv[0] == "predict":
        from synthssl.train.predict.cli import main as predict_main

        return predict_main(argv[1:])
    parser = build_parser(with_method_help="-h" in argv or "--help" in argv)
    args = parser.parse_args(argv)
    from synthssl.train import distributed as dist_utils

    try:
        cfg = load_config(args.config, args.overrides)
        if args.print_config:
            import yaml

            from synthssl.train.config import to_dict

            print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
            return 0
        dist_utils.init_from_env()
        from synthssl.train.trainer import Trainer, prepare

        prepared = prepare(cfg, dist_utils.world_size())
        trainer = Trainer(cfg, resume=args.resume, prepared=prepared)
        run_dir = trainer.run()
    except ConfigError as exc:
        print(f"train-ssl: config error: {exc}", file=sys.stderr)
        dist_utils.cleanup()
        return 2
    except KeyboardInterrupt:
        print("train-ssl: interrupted; resume with --resume", file=sys.stderr)
        dist_utils.cleanup()
        return 130
    is_main = dist_utils.rank() == 0
    dist_utils.cleanup()
    if is_main:
        print(f"train-ssl: done; run in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
