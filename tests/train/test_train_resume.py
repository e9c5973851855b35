"""A run killed after its checkpoint and resumed ends with the weights of an uninterrupted run."""
from __future__ import annotations

import json

import torch

from synthssl.train.config import load_config
from synthssl.train.trainer import Trainer
from train_helpers import tiny_overrides


def _cfg(shard_dir, photo_dir, out):
    return load_config(None, tiny_overrides(shard_dir, photo_dir, out, **{
        "train.steps": 4, "train.checkpoint_every": 2, "data.workers": 1, "optim.warmup_steps": 2,
        "optim.grad_clip": 1.0, "method.synthetic.adversarial": "gan", "augment.blur_p": 0.5}))


def test_resume_matches_uninterrupted_run(shard_dir, photo_dir, tmp_path):
    Trainer(_cfg(shard_dir, photo_dir, tmp_path / "full")).run()
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)

    killed = _cfg(shard_dir, photo_dir, tmp_path / "resumed")
    Trainer(killed).run(stop_after=3)  # checkpoint at step 2, dies during step 3's aftermath
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["step"] == 2
    Trainer(killed, resume=True).run()
    resumed = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)

    assert resumed["step"] == full["step"] == 4
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
    cfg = load_config(None, tiny_overrides(shard_dir, photo_dir, tmp_path / "run", **{
        "train.steps": 3, "train.checkpoint_every": 0, "method.synthetic.adversarial": "none"}))
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


def test_resume_from_a_checkpoint_of_the_old_key_layout(shard_dir, photo_dir, tmp_path):
    """A checkpoint written before methods had one Encoder (``backbone.*`` keys) resumes to the same weights."""
    Trainer(_cfg(shard_dir, photo_dir, tmp_path / "full")).run()
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    killed = _cfg(shard_dir, photo_dir, tmp_path / "old")
    Trainer(killed).run(stop_after=3)
    path = tmp_path / "old" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    prefix = "encoder.trunk."
    ckpt["method"] = {("backbone." + k[len(prefix):] if k.startswith(prefix) else k): v
                      for k, v in ckpt["method"].items()}
    assert "backbone.conv1.weight" in ckpt["method"] and not any(k.startswith("encoder.") for k in ckpt["method"])
    torch.save(ckpt, path)
    Trainer(killed, resume=True).run()
    resumed = torch.load(path, weights_only=True)
    assert resumed["step"] == 4 and set(resumed["method"]) == set(full["method"])
    for name, value in full["method"].items():
        torch.testing.assert_close(resumed["method"][name], value, rtol=1e-5, atol=1e-6, msg=name)
