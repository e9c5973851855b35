"""A run killed after its checkpoint and resumed ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.train_overrides import tiny_overrides

from synthssl.train.checkpoint import FORMAT_VERSION, load_checkpoint
from synthssl.train.config import ConfigError, load_config
from synthssl.train.trainer import Trainer


def _cfg(shard_dir, photo_dir, out):
    return load_config(
        None,
        tiny_overrides(
            shard_dir,
            photo_dir,
            out,
            **{
                "train.steps": 4,
                "train.checkpoint_every": 2,
                "data.workers": 1,
                "optim.warmup_steps": 2,
                "optim.grad_clip": 1.0,
                "method.synthetic.adversarial": "gan",
                "augment.blur_p": 0.5,
            },
        ),
    )


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(shard_dir, photo_dir, tmp_path):
    Trainer(_cfg(shard_dir, photo_dir, tmp_path / "full")).run()
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)

    killed = _cfg(shard_dir, photo_dir, tmp_path / "resumed")
    Trainer(killed).run(stop_after=3)  # checkpoint at step 2, dies during step 3's aftermath
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["step"] == 2
    Trainer(killed, resume=True).run()
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)

    assert resumed["step"] == full["step"] == 4
    assert resumed["format_version"] == full["format_version"] == FORMAT_VERSION
    for name, value in full["method"].items():
        torch.testing.assert_close(resumed["method"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    opt_full = full["optimizers"]["discriminator"]["state"]
    opt_res = resumed["optimizers"]["discriminator"]["state"]
    for k in opt_full:
        torch.testing.assert_close(opt_res[k]["exp_avg"], opt_full[k]["exp_avg"], rtol=1e-5, atol=1e-7)
    # metrics read like one run: steps 1..5 once each, same losses
    lines = [json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]
    for a, b in zip(lines, ref):
        assert abs(a["loss"] - b["loss"]) < 1e-4 * max(1, abs(b["loss"]))


def test_ctrl_c_saves_the_finished_steps(shard_dir, photo_dir, tmp_path):
    cfg = load_config(
        None,
        tiny_overrides(
            shard_dir,
            photo_dir,
            tmp_path / "run",
            **{"train.steps": 3, "train.checkpoint_every": 0, "method.synthetic.adversarial": "none"},
        ),
    )
    trainer = Trainer(cfg)
    real_step = trainer.train_step

    def interrupted(batch, step):
        if step == 2:
            raise KeyboardInterrupt
        return real_step(batch, step)

    trainer.train_step = interrupted
    try:
        trainer.run()
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interrupt was swallowed")
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 2
    Trainer(cfg, resume=True).run()
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 3
    assert (tmp_path / "run" / "export" / "backbone.pt").is_file()


@pytest.mark.parametrize(
    "state, found", [({"step": 1}, "no format version"), ({"format_version": 0, "step": 1}, "format 0")]
)
def test_a_checkpoint_of_another_format_is_refused_in_one_line(tmp_path, state, found):
    torch.save(state, tmp_path / "checkpoint.pt")
    with pytest.raises(ConfigError) as info:
        load_checkpoint(tmp_path)
    assert str(info.value) == (
        f"--resume: {tmp_path / 'checkpoint.pt'} has {found}; this synthssl resumes checkpoint format "
        f"{FORMAT_VERSION} only; start a new run (--overwrite, or another train.out)"
    )


@pytest.mark.slow
def test_weight_average_is_exported_and_resumes_exactly(shard_dir, photo_dir, tmp_path):
    """train.ema_decay: the export holds the warmed-up moving average (not the last weights), and a
    killed + resumed run exports the same average as an uninterrupted one."""
    from synthssl.train.momentum.weight_average import WeightAverage

    def cfg(out):
        return load_config(
            None,
            tiny_overrides(
                shard_dir,
                photo_dir,
                out,
                **{
                    "train.steps": 4,
                    "train.checkpoint_every": 2,
                    "train.ema_decay": 0.9,
                    "method.synthetic.adversarial": "none",
                },
            ),
        )

    trainer = Trainer(cfg(tmp_path / "full"))
    snapshots = []
    real_step = trainer.train_step

    def recording(batch, step):
        out = real_step(batch, step)
        snapshots.append({k: v.detach().clone() for k, v in trainer.method.encoder.state_dict().items()})
        return out

    trainer.train_step = recording
    initial = {k: v.detach().clone() for k, v in trainer.method.encoder.state_dict().items()}
    trainer.run()
    exported = torch.load(tmp_path / "full" / "export" / "backbone.pt", weights_only=True)
    name = next(k for k in exported if k.endswith("conv1.weight"))
    key = next(k for k in initial if k.endswith(name))
    expected = initial[key].clone()
    for t, snap in enumerate(snapshots, start=1):
        decay = min(0.9, (1 + t) / (10 + t))
        expected = decay * expected + (1 - decay) * snap[key]
    torch.testing.assert_close(exported[name], expected, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(exported[name], snapshots[-1][key])  # not the last weights
    live = {k: v.detach().clone() for k, v in trainer.method.encoder.state_dict().items()}
    torch.testing.assert_close(live[key], snapshots[-1][key])  # the live weights are back after the export

    killed = cfg(tmp_path / "resumed")
    Trainer(killed).run(stop_after=3)
    Trainer(killed, resume=True).run()
    again = torch.load(tmp_path / "resumed" / "export" / "backbone.pt", weights_only=True)
    for k, v in exported.items():
        torch.testing.assert_close(again[k], v, rtol=1e-5, atol=1e-6, msg=k)
    heads = torch.load(tmp_path / "full" / "export" / "heads.pt", weights_only=True)
    heads_again = torch.load(tmp_path / "resumed" / "export" / "heads.pt", weights_only=True)
    for k, v in heads.items():
        torch.testing.assert_close(heads_again[k], v, rtol=1e-5, atol=1e-6, msg=k)
    try:
        WeightAverage({}, 1.0)
    except ValueError as exc:
        assert "decay" in str(exc)
    else:
        raise AssertionError("decay 1.0 was accepted")
