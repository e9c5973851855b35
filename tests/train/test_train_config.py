"""Bad configs fail before training, naming the key and the fix; the CLI lists options."""
from __future__ import annotations

import sys
import types

import pytest

from synthssl.train.cli import main
from synthssl.train.config import ConfigError, load_config
from synthssl.train.trainer import prepare
from train_helpers import tiny_overrides


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
    msg = _error(shard_dir, photo_dir, tmp_path, **{"data.shards": "[]", "data.photo_pairs": "true"})
    assert "geometry" in msg  # property heads need rendered data
    msg = _error(shard_dir, photo_dir, tmp_path, **{"data.batch_size": 1})
    assert "data.batch_size" in msg
    msg = _error(shard_dir, photo_dir, tmp_path, **{"method.contrast_weight": 0.0,
                                                    "method.synthetic.property_weight": 0.0,
                                                    "method.synthetic.adversarial": "none"})
    assert "every objective is off" in msg


def test_cli_help_lists_options_and_methods(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for key in ("data.shards", "data.photo_pairs", "optim.lr", "train.precision", "augment.crop_scale",
                "method.name=synthetic_contrast", "method.synthetic.adversarial_weight", "method.num_clusters",
                "method.queue_size", "data.batch_size (int, default 32): global batch"):
        assert key in text, key


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
