"""``train-ssl``: train a method from a YAML config with ``key=value`` overrides.

    train-ssl [CONFIG.yaml] [key=value ...] [--resume | --overwrite] [--quiet | --verbose] [--print-config]
    train-ssl --resume train.out=RUN [key=value ...]   (the config of RUN/config.yaml; also --resume RUN)
    train-ssl export RUN [checkpoint=PATH] [out=DIR]   (synthssl.train.export_cli)
    train-ssl eval [CONFIG.yaml] [key=value ...]       (synthssl.train.eval.cli)
    train-ssl predict run=RUN images=PATH [key=value ...]   (synthssl.train.predict.cli)
    torchrun --nproc-per-node 8 -m synthssl.train.cli CONFIG.yaml ...   (DDP)

CONFIG.yaml is a file (with ``base:`` includes) or a shipped config name (``simclr``,
``configs/simclr.yaml``); values are parsed as YAML (``data.shards=[a,b]``). The run's
lifecycle (lock, interrupt, resume, extend, export, overwrite) is described in docs/train.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
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
        f"shipped config name ({shipped}). `train-ssl --resume train.out=RUN` continues RUN from its own "
        "config.yaml (key=value overrides are shown; train.steps may grow). `train-ssl export --help`, "
        "`train-ssl eval --help` and `train-ssl predict --help` for the other commands.",
        epilog="Keys (set in the YAML file or as key=value, e.g. optim.lr=0.1):\n"
        + "\n".join(help_lines(TrainingConfig)),
    )
    parser.add_argument(
        "words",
        nargs="*",
        metavar="CONFIG.yaml | key=value",
        help="a config file (first), then key=value overrides (value parsed as YAML)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in train.out from its checkpoint (without CONFIG.yaml: with train.out's config.yaml)",
    )
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


def _resumed_out(overrides: list[str]) -> str:
    """The train.out a bare ``--resume`` continues: the last ``train.out=`` override, else the default."""
    from synthssl.core.config import apply_override
    from synthssl.train.config import TrainConfig

    tree: dict = {}
    for item in overrides:
        if item.split("=", 1)[0].strip() == "train.out":
            apply_override(tree, item)
    return str(tree.get("train", {}).get("out") or TrainConfig().out)


def _rank0_failed(failed: bool) -> bool:
    """Rank 0's ``failed`` on every rank (a distributed run); ``failed`` itself otherwise."""
    from synthssl.train import distributed as dist_utils

    if not dist_utils.is_distributed():
        return failed
    import torch
    import torch.distributed as dist

    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    flag = torch.tensor([1.0 if failed else 0.0], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item() > 0)


def _run_overrides(config: Optional[str], overrides: list[str], resume: bool) -> list[str]:
    """The overrides, plus train.out=DIR when resuming from DIR/config.yaml of a (copied) run folder."""
    from synthssl.train.run_folder import config_run_folder

    folder = config_run_folder(config) if resume and config is not None else None
    if folder is None or any(o.split("=", 1)[0].strip() == "train.out" for o in overrides):
        return list(overrides)
    return [*overrides, f"train.out={folder}"]  # a copied run folder resumes in place


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``train-ssl``; returns the exit code (2 = config error, 1 = a render worker of
    ``data.stream`` died or failed, 130 = interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    require_extra("train", "train-ssl")
    if argv and argv[0] == "eval":
        from synthssl.train.eval.cli import main as eval_main

        return eval_main(argv[1:])
    if argv and argv[0] == "predict":
        from synthssl.train.predict.cli import main as predict_main

        return predict_main(argv[1:])
    if argv and argv[0] == "export":
        from synthssl.train.export_cli import main as export_main

        return export_main(argv[1:])
    args = build_parser().parse_intermixed_args(argv)  # options and overrides in any order
    from synthssl.core.console import one_line, setup_logging
    from synthssl.core.errors import OutputWriteError
    from synthssl.core.folder_lock import FolderInUseError
    from synthssl.dataset.errors import ShardFormatError
    from synthssl.train import distributed as dist_utils
    from synthssl.train.data.stream import RenderStreamError
    from synthssl.train.guards import DivergenceError

    verbosity = -1 if args.quiet else 1 if args.verbose else 0
    log = setup_logging("train-ssl", verbosity, 0, args.log_all_ranks)
    try:
        config, overrides = split_arguments(args.words)
        if args.resume and config is not None and Path(config).is_dir():  # train-ssl --resume RUN
            overrides = [f"train.out={config}", *overrides]
            config = None
        if args.resume and config is None:  # the run's own config; overrides apply on top
            from synthssl.train.resume import run_config_file

            config = str(run_config_file(_resumed_out(overrides)))
        cfg = load_config(config, _run_overrides(config, overrides, args.resume))
        if args.print_config:
            print(to_yaml(cfg), end="")
            return 0
        from synthssl.train.run_folder import RunFolderClaim

        dist_utils.init_from_env()
        setup_logging("train-ssl", verbosity, dist_utils.rank(), args.log_all_ranks)  # only rank 0 prints
        claim = RunFolderClaim(
            cfg.train.out, resume=args.resume, overwrite=args.overwrite, holder=dist_utils.rank() == 0
        )
        try:
            claim.__enter__()
        except BaseException:
            _rank0_failed(True)
            raise
        if _rank0_failed(False):  # rank 0 could not claim the folder and says why
            claim.release()
            dist_utils.cleanup()
            return 2
        with claim:
            from synthssl.train.trainer import Trainer, prepare

            prepared = prepare(cfg, dist_utils.world_size(), resume=args.resume)
            moved = claim.replace_old_run()
            if moved is not None:
                log.warning("moved the run in %s aside to %s (--overwrite)", cfg.train.out, moved)
            if claim.move and dist_utils.is_distributed():
                import torch.distributed

                torch.distributed.barrier()
            trainer = Trainer(cfg, resume=args.resume, prepared=prepared, argv=["train-ssl", *argv])
            run_dir = trainer.run()
    except ConfigError as exc:
        log.error("config error: %s", exc)
        dist_utils.cleanup()
        return 2
    except (DivergenceError, OutputWriteError, ShardFormatError, FolderInUseError) as exc:
        log.error("%s", one_line(exc))
        dist_utils.cleanup()
        return 2
    except RenderStreamError as exc:  # a render worker of data.stream died or failed: a run-time failure
        log.error("%s", one_line(exc))
        dist_utils.cleanup()
        return 1
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
