"""``train-ssl``: train a method from a YAML config with dotted overrides.

    train-ssl CONFIG.yaml [dotted.key=value ...] [--resume | --overwrite] [--quiet | --verbose] [--print-config]
    train-ssl eval ...        (dispatches to synthssl.train.eval.cli.main)
    train-ssl predict ...     (dispatches to synthssl.train.predict.cli.main)
    torchrun --nproc-per-node 8 -m synthssl.train.cli CONFIG.yaml ...   (DDP)
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from synthssl.dataset.extras import require_extra
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
    parser.add_argument("--overwrite", action="store_true",
                        help="train.out holds a run: move it aside (<out>.replaced-<time>, never deleted), start anew")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")
    loud.add_argument("-v", "--verbose", action="store_true", help="print debug detail too")
    parser.add_argument("--log-all-ranks", action="store_true", help="every rank prints (default: rank 0 only)")
    return parser


def _run_overrides(args: argparse.Namespace) -> list[str]:
    """The overrides, plus train.out=DIR when resuming from DIR/config.yaml of a (copied) run folder."""
    from synthssl.train.run_folder import config_run_folder

    folder = config_run_folder(args.config) if args.resume else None
    if folder is None or any(o.split("=", 1)[0].strip() == "train.out" for o in args.overrides):
        return list(args.overrides)
    return [*args.overrides, f"train.out={folder}"]  # a copied run folder resumes in place


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``train-ssl``; returns the exit code (2 = config error, 130 = interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    require_extra("train", "train-ssl")
    if argv and argv[0] == "eval":
        from synthssl.train.eval.cli import main as eval_main

        return eval_main(argv[1:])
    if argv and argv[0] == "predict":
        from synthssl.train.predict.cli import main as predict_main

        return predict_main(argv[1:])
    parser = build_parser(with_method_help="-h" in argv or "--help" in argv)
    args = parser.parse_intermixed_args(argv)  # options and overrides in any order
    from synthssl.dataset.console import one_line, setup_logging
    from synthssl.dataset.errors import OutputWriteError, ShardFormatError
    from synthssl.train import distributed as dist_utils
    from synthssl.train.guards import DivergenceError

    verbosity = -1 if args.quiet else 1 if args.verbose else 0
    log = setup_logging("train-ssl", verbosity, 0, args.log_all_ranks)
    try:
        cfg = load_config(args.config, _run_overrides(args))
        if args.print_config:
            import yaml

            from synthssl.train.config import to_dict

            print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
            return 0
        from synthssl.train.run_folder import check_run_folder, move_aside

        move = check_run_folder(cfg.train.out, resume=args.resume, overwrite=args.overwrite)
        dist_utils.init_from_env()
        setup_logging("train-ssl", verbosity, dist_utils.rank(), args.log_all_ranks)  # only rank 0 prints
        from synthssl.train.trainer import Trainer, prepare

        prepared = prepare(cfg, dist_utils.world_size())
        if move:
            if dist_utils.rank() == 0:
                log.warning("moved the run in %s aside to %s (--overwrite)", cfg.train.out, move_aside(cfg.train.out))
            if dist_utils.is_distributed():
                import torch.distributed

                torch.distributed.barrier()
        trainer = Trainer(cfg, resume=args.resume, prepared=prepared, argv=["train-ssl", *argv])
        run_dir = trainer.run()
    except ConfigError as exc:
        log.error("config error: %s", exc)
        dist_utils.cleanup()
        return 2
    except (DivergenceError, OutputWriteError, ShardFormatError) as exc:
        log.error("%s", one_line(exc))
        dist_utils.cleanup()
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; resume with --resume")
        dist_utils.cleanup()
        return 130
    is_main = dist_utils.rank() == 0
    dist_utils.cleanup()
    if is_main and trainer.stopped_by is not None:
        log.warning("%s at step %d: checkpoint written to %s; continue with --resume", trainer.stopped_by,
                    trainer.steps_done, run_dir)
    elif is_main:
        print(f"train-ssl: done; run in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
