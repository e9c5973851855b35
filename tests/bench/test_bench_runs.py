"""bench/bench_runs.py: a benchmark reuses a finished run only when its fully resolved settings
(method defaults included) are today's; anything else is refused, never mixed in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_runs import SETTINGS_FILE, SettingsMismatch, resolved_settings, train_run

from synthssl.train.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]

CONFIG = ROOT / "train/configs/synthetic_contrast.yaml"
OVERRIDES = ["train.steps=3", "data.shards=[/nowhere]"]


def _finished(run: Path, steps: int, settings: dict | None) -> None:
    (run / "export").mkdir(parents=True)
    (run / "export/backbone.json").write_text(json.dumps({"steps": steps}))
    (run / "train_seconds.json").write_text(json.dumps({"seconds": 12.5}))
    if settings is not None:
        (run / SETTINGS_FILE).write_text(json.dumps({"settings": settings}))


def test_settings_hold_method_defaults_and_leave_out_the_paths():
    s = resolved_settings(CONFIG, OVERRIDES)
    assert s["method"]["name"] == "synthetic_contrast"
    assert s["method"]["projection"] == {"hidden_dim": 512, "dim": 128, "layers": 2}  # layers: not in the YAML
    assert s["method"]["synthetic"]["depth_weight"] == 1.0  # a default not in the YAML
    assert "shards" not in s["data"] and "out" not in s["train"]
    assert resolved_settings(CONFIG, OVERRIDES + ["data.shards=[/elsewhere]"]) == s
    assert resolved_settings(CONFIG, OVERRIDES + ["method.projection.layers=3"]) != s
    with pytest.raises(ConfigError):
        resolved_settings(CONFIG, OVERRIDES + ["method.no_such_key=1"])


def test_a_finished_run_is_reused_only_with_the_same_settings(tmp_path):
    same = tmp_path / "same"
    _finished(same, 3, resolved_settings(CONFIG, OVERRIDES))
    assert train_run(CONFIG, OVERRIDES, same, 3) == 12.5  # reused: nothing is trained (no data here)

    changed = tmp_path / "changed"  # e.g. a shipped default changed since it was trained
    old = resolved_settings(CONFIG, OVERRIDES)
    old["method"]["temperature"] = 0.5
    del old["train"]["ema_decay"]  # an option added since
    _finished(changed, 3, old)
    with pytest.raises(SettingsMismatch, match="other settings") as err:
        train_run(CONFIG, OVERRIDES, changed, 3)
    new_temperature = resolved_settings(CONFIG, OVERRIDES)["method"]["temperature"]
    assert f"method.temperature: 0.5 -> {new_temperature!r}; train.ema_decay: absent -> 0.0" in str(err.value)

    unrecorded = tmp_path / "unrecorded"  # a finished run whose settings nobody wrote down
    _finished(unrecorded, 3, None)
    with pytest.raises(SettingsMismatch, match="not recorded"):
        train_run(CONFIG, OVERRIDES, unrecorded, 3)


def test_a_key_added_since_is_no_difference_at_its_default(tmp_path):
    """A record written before ``train.ema_decay`` existed: the run trained without an EMA, which is
    what the key's default (0.0) does, so the run is reused; at any other value it is refused."""
    old = resolved_settings(CONFIG, OVERRIDES)
    del old["train"]["ema_decay"]
    run = tmp_path / "before-ema"
    _finished(run, 3, old)
    assert train_run(CONFIG, OVERRIDES, run, 3) == 12.5
    assert json.loads((run / SETTINGS_FILE).read_text())["settings"] == old  # the record is left as written
    with pytest.raises(SettingsMismatch, match=r"train\.ema_decay: absent -> 0\.99\)"):
        train_run(CONFIG, [*OVERRIDES, "train.ema_decay=0.99"], run, 3)

    section = resolved_settings(CONFIG, OVERRIDES)  # a whole section added since, all at its defaults
    del section["eval"]
    _finished(tmp_path / "before-eval", 3, section)
    assert train_run(CONFIG, OVERRIDES, tmp_path / "before-eval", 3) == 12.5
