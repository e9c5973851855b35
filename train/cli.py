"""``train-ssl``: train a method from a YAML config with ``key=value`` overrides.

    train-ssl [CONFIG.yaml] [key=value ...] [--resume | --overwrite] [--quiet | --verbose] [--print-config]
    train-ssl eval [CONFIG.yaml] [key=value ...]   (synthssl.train.eval.cli)
    train-ssl predict ...                          (synthssl.train.predict.cli)
    torchrun --nproc-per-node 8 -m synthssl.train.cli CONFIG.yaml ...   (DDP)

CONFIG.yaml is a file (with ``base:`` includes) or a shipped config name (``simclr``,
``configs/simclr.yaml``); values are parsed as YAML (``data.shards=[a,b]``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from synthssl.core.config import help_lines, split_arguments, to_yaml
from synthssl.core.extras import require_extra
from synthssl.train.config import SHIPPED_CONFIGS, ConfigError, TrainingConfig, load_config


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``--help`` lists every config key, each method's options included."""
    shipped = ", ".join(sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml")))
    parser = argparse.ArgumentParser(
        prog="train-ssl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="train-ssl [CONFIG.yaml] [key=value ...] [options]",
        description="Train a self-supervised backbone on rendered view pairs (synthssl). CONFIG.yaml: a file or a "
        f"shipped config name ({shipped}). `train-ssl eval --help` for evaluation.",
        epilog="Keys (set in the YAML file or as key=value, e.g. optim.lr=0.1):\n"
        + "\n".join(help_lines(TrainingConfig)),
    )
    parser.add_argument(
        "words",
        nargs="*",
        metavar="CONFIG.yaml | key=value",
        help="a config file (first), then key=value overrides (value parsed as YAML)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in train.out from its checkpoint")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train.out holds a run: move it aside (<out>.replaced-<time>, never deleted), start anew",
    )
    parser.add_argument("--print-config", action="store_true", help="print the merged config (YAML) and exit")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print warnings and errors only")
    loud.add_argument("-v", "--verbose", action="store_true", help="print debug detail too")
    parser.add_argument("--log-all-ranks", action="store_true", help="every rank prints (default: rank 0 only)")
    return parser


def _run_overrides(config: Optional[str], overrides: list[str], resume: bool) -> list[str]:
    """The overrides, plus train.out=DIR when resuming from DIR/config.yaml of a (copied) run folder."""
    from synthssl.train.run_folder import config_run_folder

    folder = config_run_folder(config) if resume and config is not None else None
    if folder is None or any(o.split("=", 1)[0].strip() == "train.out" for o in overrides):
        return list(overrides)
    return [*overrides, f"train.out={folder}"]  # a copied run folder resumes in place


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
    args = build_parser().parse_intermixed_args(argv)  # options and overrides in any order
    from synthssl.core.console import one_line, setup_logging
    from synthssl.core.errors import OutputWriteError
    from synthssl.dataset.errors import ShardFormatError
    from synthssl.train import distributed as dist_utils
    from synthssl.train.guards import DivergenceError

    verbosity = -1 if args.quiet else 1 if args.verbose else 0
    log = setup_logging("train-ssl", verbosity, 0, args.log_all_ranks)
    try:
        config, overrides = split_arguments(args.words)
        cfg = load_config(config, _run_overrides(config, overrides, args.resume))
        if args.print_config:
            print(to_yaml(cfg), end="")
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
        log.warning(
            "%s at step %d: checkpoint written to %s; continue with --resume",
            trainer.stopped_by,
            trainer.steps_done,
            run_dir,
        )
    elif is_main:
        print(f"train-ssl: done; run in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
