"""Bad configs fail before training, naming the key and the fix; the CLI lists options."""

from __future__ import annotations

import sys
import types

import pytest
from helpers.train_overrides import tiny_overrides

from synthssl.train.cli import main
from synthssl.train.config import ConfigError, load_config
from synthssl.train.trainer import prepare


def _error(shard_dir, photo_dir, tmp_path, **extra) -> str:
    with pytest.raises(ConfigError) as info:
        prepare(load_config(None, tiny_overrides(shard_dir, photo_dir, tmp_path / "run", **extra)))
    return str(info.value)


def test_unknown_key_and_wrong_type_name_the_key(shard_dir, photo_dir, tmp_path):
    assert "optim.lrr" in _error(shard_dir, photo_dir, tmp_path, **{"optim.lrr": 0.1})
    msg = _error(shard_dir, photo_dir, tmp_path, **{"data.batch_size": "many"})
    assert "data.batch_size" in msg and "integer" in msg
    msg = _error(shard_dir, photo_dir, tmp_path, **{"method.temprature": 0.1})
    assert "method.temprature" in msg and "temperature" in msg  # lists the valid options
    msg = _error(shard_dir, photo_dir, tmp_path, **{"method.synthetic.adversarial": "wgan"})
    assert "method.synthetic.adversarial" in msg and "'gan'" in msg
    assert "method.name" in _error(shard_dir, photo_dir, tmp_path, **{"method.name": "byol"})


def test_data_problems_are_caught_before_training(shard_dir, photo_dir, tmp_path):
    msg = _error(shard_dir, photo_dir, tmp_path, **{"data.shards": f"[{tmp_path / 'nope'}]"})
    assert "data.shards" in msg and "nope" in msg
    msg = _error(shard_dir, photo_dir, tmp_path, **{"data.image_size": 64})
    assert "data.image_size" in msg and "48" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = _error(shard_dir, empty, tmp_path)
    assert "data.photos" in msg and "no .jpg" in msg
    msg = _error(shard_dir, photo_dir, tmp_path, **{"data.photos": "null"})
    assert "data.photos" in msg and "method.synthetic.adversarial=none" in msg
    msg = _error(
        shard_dir,
        photo_dir,
        tmp_path,
        **{"data.photos": "null", "method.synthetic.adversarial": "none", "method.photo_contrast_weight": 0.5},
    )
    assert "data.photos" in msg and "method.photo_contrast_weight=0" in msg and "adversarial" not in msg.split("(")[-1]
    msg = _error(
        shard_dir, photo_dir, tmp_path, **{"method.photo_decorrelation_weight": 1.0, "data.real_batch_size": 1}
    )
    assert "data.real_batch_size" in msg and "at least 2 real photos" in msg  # a statistic over the photos
    msg = _error(shard_dir, photo_dir, tmp_path, **{"data.shards": "[]", "data.photo_pairs": "true"})
    assert "geometry" in msg  # property heads need rendered data
    msg = _error(shard_dir, photo_dir, tmp_path, **{"data.batch_size": 1})
    assert "data.batch_size" in msg
    msg = _error(
        shard_dir,
        photo_dir,
        tmp_path,
        **{
            "method.contrast_weight": 0.0,
            "method.synthetic.property_weight": 0.0,
            "method.synthetic.adversarial": "none",
        },
    )
    assert "every objective is off" in msg


def test_cli_help_lists_options_and_methods(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for key in (
        "data.shards",
        "data.photo_pairs",
        "optim.lr",
        "train.precision",
        "augment.crop_scale",
        "method.name=synthetic_contrast",
        "method.synthetic.adversarial_weight",
        "method.num_clusters",
        "method.queue_size",
        "data.batch_size (int, default 32): global batch",
    ):
        assert key in text, key
    keys = text.split("Keys (set in the YAML file", 1)[1].splitlines()[1:]
    options = [line for line in keys if line.startswith("  ")]
    assert len(options) > 100 and all("): " in line for line in options), [l for l in options if "): " not in l]


def test_cli_config_error_exit_code(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data:\n  shards: [/definitely/missing]\nmethod:\n  name: synthetic_contrast\n")
    assert main([str(cfg), f"train.out={tmp_path / 'run'}"]) == 2
    assert "data.shards" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_eval_subcommand_dispatches(monkeypatch):
    seen = {}
    fake = types.ModuleType("synthssl.train.eval.cli")
    fake.main = lambda argv: seen.setdefault("argv", argv) and 7
    monkeypatch.setitem(sys.modules, "synthssl.train.eval.cli", fake)
    assert main(["eval", "--backbone", "x"]) == 7
    assert seen["argv"] == ["--backbone", "x"]


def test_resume_refuses_a_different_config(shard_dir, photo_dir, tmp_path):
    from synthssl.train.trainer import Trainer

    out = tmp_path / "run"
    Trainer(load_config(None, tiny_overrides(shard_dir, photo_dir, out, **{"train.steps": 1}))).run()
    changed = load_config(None, tiny_overrides(shard_dir, photo_dir, out, **{"train.steps": 1, "optim.lr": 0.5}))
    with pytest.raises(ConfigError, match="optim.lr"):
        Trainer(changed, resume=True)
    with pytest.raises(FileNotFoundError, match="resume"):
        Trainer(load_config(None, tiny_overrides(shard_dir, photo_dir, tmp_path / "other")), resume=True)


def test_exponent_overrides_without_a_dot_are_numbers():
    # YAML 1.1 reads "1e-6" as a string; a user typing optim.weight_decay=1e-6 means a number.
    cfg = load_config(None, ["optim.weight_decay=1e-6", "optim.lr=2E-3", "train.out=runs/1e5"])
    assert cfg.optim.weight_decay == 1e-6 and cfg.optim.lr == 2e-3 and cfg.train.out == "runs/1e5"


FULL_SIZE = ("synthetic_contrast", "dsc", "dsc_photos", "simclr", "simclr_photos", "mocov2", "densecl")
ABLATIONS = ("ablation_contrast", "ablation_properties", "ablation_adaptation", "ablation_dann")


def _budget(name: str) -> dict:
    from synthssl.train.config import to_dict

    tree = to_dict(load_config(name))
    tree["train"].pop("out")
    for key in ("photos", "photo_pairs", "shards"):  # what each config trains on
        tree["data"].pop(key)
    return {k: tree[k] for k in ("data", "augment", "model", "optim", "train", "log")}


@pytest.mark.parametrize("group, base", [(FULL_SIZE, "budget.yaml"), (ABLATIONS, "ablation_budget.yaml")])
def test_shipped_configs_of_a_group_share_one_budget_file(group, base):
    from synthssl.core.yaml_numbers import safe_load
    from synthssl.train.config import SHIPPED_CONFIGS

    for name in group:
        own = safe_load((SHIPPED_CONFIGS / f"{name}.yaml").read_text())
        assert own["base"] == base and not {"model", "optim", "augment", "log"} & set(own), name
        assert _budget(name) == _budget(group[0]), name
    assert load_config("dsc").method.synthetic.property_weight == 0.0  # nested, with DSC's own default
    assert load_config("ablation_dann").method.synthetic.adversarial == "dann"


def test_a_shipped_config_is_named_without_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here: resolved from the package
    assert load_config("simclr") == load_config("configs/simclr.yaml") == load_config("simclr.yaml")
    assert load_config("simclr").method.name == "simclr"
    with pytest.raises(ConfigError, match="nope: config file not found; shipped configs: .*simclr"):
        load_config("nope")


def test_print_config_shows_the_merged_result(capsys):
    from synthssl.core.yaml_numbers import safe_load

    assert main(["mocov2", "data.shards=[x]", "optim.lr=0.5", "--print-config"]) == 0
    tree = safe_load(capsys.readouterr().out)
    assert tree["method"]["name"] == "mocov2" and tree["method"]["queue_size"] == 16384
    assert tree["optim"] == {**tree["optim"], "name": "lars", "lr": 0.5} and tree["data"]["shards"] == ["x"]
    assert main(["mocov2", "extra.yaml"]) == 2  # one config file, then key=value only


def test_the_shards_are_opened_once(shard_dir, photo_dir, tmp_path, monkeypatch):
    from synthssl.dataset import reader
    from synthssl.train.trainer import Trainer

    opened = []
    real_init = reader.ShardCollection.__init__
    monkeypatch.setattr(
        reader.ShardCollection, "__init__", lambda self, *a, **k: (opened.append(a), real_init(self, *a, **k))[1]
    )
    trainer = Trainer(
        load_config(None, tiny_overrides(shard_dir, photo_dir, tmp_path / "run", **{"data.val_fraction": 0.25}))
    )
    assert len(opened) == 1
    assert trainer.data.scenes.collection is trainer.prepared.collection


def test_crop_neighbours_need_photo_pairs_before_anything_is_built(shard_dir, photo_dir, tmp_path, monkeypatch):
    from synthssl.train.methods import dsc

    monkeypatch.setattr(dsc.DSC, "__init__", lambda *a, **k: pytest.fail("built before the data check"))
    msg = _error(
        shard_dir,
        photo_dir,
        tmp_path,
        **{"method.name": "dsc", "method.neighbours": "crop", "method.projection.hidden_dim": 64},
    )
    assert msg.startswith("method.neighbours:") and "data.photo_pairs=true" in msg


@pytest.mark.parametrize(
    "override, key",
    [("method.property_weight=3", "method.property_weight"), ("method.proj_dim=64", "method.proj_dim")],
)
def test_nested_options_are_known_only_at_their_nested_place(override, key):
    with pytest.raises(ConfigError) as info:
        load_config("synthetic_contrast", [override])
    assert str(info.value) == (
        f"{key}: unknown key; the keys of method are: name, temperature, projection, contrast_weight, "
        "photo_contrast_weight, decorrelation_weight, photo_decorrelation_weight, synthetic"
    )
