"""The recommended recipe is the default: a bare ``train-ssl``, the shipped ``synthetic_contrast`` config and
the quality benchmark's ``full`` arm train the same objective with the same optimiser; they differ only in
the budget (how long and how big a run is) and in where and how it runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from synthssl.core.yaml_numbers import safe_load
from synthssl.train.cli import main
from synthssl.train.config import load_config, to_dict

ROOT = Path(__file__).resolve().parents[2]

#: What sizes a run: its length, its batch, its resolution and the schedule lengths that follow them.
BUDGET_KEYS = {"train.steps", "data.batch_size", "data.image_size", "optim.warmup_steps"}
#: Where a run's data and output are, and how it executes (devices, loaders, logging, checkpoints,
#: memory layout): nothing of what it learns.
RUN_KEYS = {
    "data.shards",
    "data.photos",
    "data.workers",
    "train.out",
    "train.seed",
    "train.device",
    "train.precision",
    "train.checkpoint_every",
    "model.channels_last",
    "log.every",
    "log.progress",
    "log.tensorboard",
}
DATA = ["data.shards=[shards]", "data.photos=photos"]


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _bench_quality():
    spec = importlib.util.spec_from_file_location("bench_quality_for_recipe", ROOT / "bench" / "bench_quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _differing(a: dict, b: dict) -> set[str]:
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


def test_bare_start_shipped_config_and_benchmark_full_arm_differ_only_in_budget_and_run_keys():
    bare = _flat(to_dict(load_config(None, DATA)))
    shipped = _flat(to_dict(load_config("synthetic_contrast", DATA)))
    bench = _bench_quality()
    config, arm_overrides = bench.ARMS["full"]
    for name, budget in bench.BUDGETS.items():
        overrides = bench.train_overrides("full", 0, budget, Path("shards"), Path("run"))
        arm = _flat(to_dict(load_config(ROOT / "train" / "configs" / config, overrides)))
        assert _differing(bare, arm) <= BUDGET_KEYS | RUN_KEYS, (name, _differing(bare, arm) - BUDGET_KEYS - RUN_KEYS)
    assert _differing(bare, shipped) <= BUDGET_KEYS | RUN_KEYS, _differing(bare, shipped) - BUDGET_KEYS - RUN_KEYS
    assert arm_overrides == []  # the full arm is the shipped config as it is


def test_bare_print_config_shows_the_recipe(capsys):
    assert main([*DATA, "--print-config"]) == 0
    tree = safe_load(capsys.readouterr().out)
    assert tree["method"]["name"] == "synthetic_contrast"
    assert {k: tree["optim"][k] for k in ("name", "lr", "weight_decay")} == {
        "name": "lars",
        "lr": 1.2,
        "weight_decay": 1e-6,
    }
    assert tree["method"]["temperature"] == 0.1 and tree["method"]["photo_decorrelation_weight"] == 10.0
    synthetic = tree["method"]["synthetic"]
    assert synthetic["property_weight"] == 3.0 and synthetic["adversarial_weight"] == 0.1
    assert synthetic["adversarial"] == "gan"
    assert tree["augment"]["crop_scale"] == [0.2, 1.0]
