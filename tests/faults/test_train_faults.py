"""Training faults (issue 11): run folders, torn metrics, preemption, divergence, full disk, files."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat

import pytest
import torch
import yaml
from helpers.faults import one_line, train_args

from synthssl.train.cli import main
from synthssl.train.config import load_config
from synthssl.train.trainer import Trainer

# YAML 1.1 would read 3e-4 as a string
CONFIG = "method:\n  name: simclr\noptim:\n  name: adamw\n  lr: 3e-4\n  warmup_steps: 1\n"


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return str(path)


def _train(config_file, shards, out, *extra, **overrides) -> int:
    return main([config_file, *train_args(shards, out, **overrides), *extra])


def _steps(run) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_second_start_in_a_run_folder_is_refused_and_the_run_kept(config_file, tiny_shards, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(config_file, tiny_shards, run) == 0
    before = {p: p.read_bytes() for p in (run / "checkpoint.pt", run / "metrics.jsonl", run / "export/backbone.pt")}
    capsys.readouterr()
    assert _train(config_file, tiny_shards, run, **{"train.steps": 2}) == 2
    line = one_line(capsys.readouterr().err)
    assert str(run) in line and "--resume" in line and "train.out=" in line and "--overwrite" in line, line
    assert all(p.read_bytes() == b for p, b in before.items())  # nothing was touched

    assert _train(config_file, tiny_shards, run, "--overwrite", **{"train.steps": 2}) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(aside) == 1 and all((aside[0] / p.relative_to(run)).read_bytes() == b for p, b in before.items())
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    assert "moved the run" in capsys.readouterr().err


def test_a_copied_run_resumes_in_place_with_options_in_any_order_and_a_torn_metrics_line(
    config_file, tiny_shards, tmp_path, capsys
):
    run = tmp_path / "run"
    Trainer(load_config(config_file, train_args(tiny_shards, run))).run(stop_after=3)  # killed after step 3
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    with open(copy / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 4, "lo')  # killed while writing a line
    # --resume before an override, the run's own config.yaml, no train.out: the copy continues, in place.
    assert main([str(copy / "config.yaml"), "--resume", "log.every=1"]) == 0
    assert "torn last line" in capsys.readouterr().err
    assert torch.load(copy / "checkpoint.pt", weights_only=True)["step"] == 4
    assert _steps(copy) == [1, 2, 3, 4]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2  # the original is untouched


def test_sigterm_checkpoints_at_the_step_boundary_and_resume_continues_exactly(
    config_file, tiny_shards, tmp_path, capsys, monkeypatch
):
    full = tmp_path / "full"
    assert _train(config_file, tiny_shards, full) == 0
    run = tmp_path / "run"
    real = Trainer.fit_step

    def preempted(self, step):
        if step == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # as SLURM sends before the time limit
        return real(self, step)

    monkeypatch.setattr(Trainer, "fit_step", preempted)
    capsys.readouterr()
    assert _train(config_file, tiny_shards, run, **{"train.checkpoint_every": 0}) == 0
    line = one_line(capsys.readouterr().err)
    assert "SIGTERM at step 1" in line and "--resume" in line, line
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 1
    assert not (run / "export").exists()
    monkeypatch.setattr(Trainer, "fit_step", real)
    assert _train(config_file, tiny_shards, run, "--resume", **{"train.checkpoint_every": 0}) == 0
    a = torch.load(full / "checkpoint.pt", weights_only=True)["method"]
    b = torch.load(run / "checkpoint.pt", weights_only=True)["method"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _steps(run) == [1, 2, 3, 4]


@pytest.mark.parametrize("scale, what", [(float("nan"), "is nan;"), (1e9, "e+09, above 1000 x its early median")])
def test_divergence_stops_naming_the_term_and_step_and_keeps_the_last_good_checkpoint(
    config_file, tiny_shards, tmp_path, capsys, monkeypatch, scale, what
):
    real = Trainer.compute_gradients

    def diverging(self, batch, info):
        terms = real(self, batch, info)
        if info.step >= 2:  # the third step
            terms["loss"] = terms["loss"] * scale
        return terms

    monkeypatch.setattr(Trainer, "compute_gradients", diverging)
    run = tmp_path / "run"
    assert _train(config_file, tiny_shards, run, **{"train.divergence_window": 2}) == 2
    line = one_line(capsys.readouterr().err)
    assert "step 3: loss term 'loss' is " in line and what in line and "last good checkpoint" in line, line
    assert scale != scale or "x its early median" in line  # the bound, for a finite jump
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    assert not (run / "export").exists() and _steps(run) == [1, 2]


def test_a_batch_larger_than_the_dataset_is_refused(config_file, tiny_shards, tmp_path, capsys):
    assert _train(config_file, tiny_shards, tmp_path / "run", **{"data.batch_size": 16}) == 2
    line = one_line(capsys.readouterr().err)
    assert "data.batch_size: 16 per step but only 12 scene pairs" in line, line


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_no_tmp(
    config_file, tiny_shards, tmp_path, capsys, monkeypatch
):
    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    run = tmp_path / "run"
    assert _train(config_file, tiny_shards, run) == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"train-ssl: cannot write {run / 'checkpoint.pt'}: No space left on device (ENOSPC)", line
    assert not list(run.rglob("*.tmp")) and not (run / "checkpoint.pt").exists()


def test_files_follow_the_umask_and_config_records_provenance_and_logs_are_plain_lines(
    config_file, tiny_shards, tmp_path, capsys
):
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "checkpoint.pt.abc123.tmp").write_bytes(b"x" * 100)  # left by a killed run
    old = os.umask(0o022)
    try:
        assert _train(config_file, tiny_shards, run, "log.progress=true", **{"train.steps": 2}) == 0
    finally:
        os.umask(old)
    err = capsys.readouterr().err  # not a terminal: plain lines, no bar
    assert "\r" not in err and "removed 1 temporary file(s) left by an interrupted run" in err
    progress = [line for line in err.splitlines() if line.startswith("train-ssl: step ")]
    assert [line.split()[2] for line in progress] == ["1/2", "2/2"], err
    assert all(" loss " in line and " images/s " in line and " ETA " in line for line in progress)
    assert main([config_file, *train_args(tiny_shards, tmp_path / "quiet", **{"train.steps": 1}), "--quiet"]) == 0
    assert "train-ssl: step" not in capsys.readouterr().err
    for name in ("checkpoint.pt", "config.yaml", "metrics.jsonl", "export/backbone.pt", "export/backbone.json"):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o644, name
    assert not list(run.rglob("*.tmp"))
    prov = yaml.safe_load((run / "config.yaml").read_text())["provenance"]
    assert prov["world_size"] == 1 and prov["torch"] == torch.__version__ and prov["synthssl"]
    assert "train.steps=2" in prov["command"] and "git_commit" in prov
    assert load_config(run / "config.yaml").train.steps == 2  # still a loadable config


def test_resume_on_replaced_shards_is_refused(config_file, tiny_shards, tmp_path, capsys):
    from helpers.analytic_scene import write_shards

    shards = tmp_path / "shards"
    shutil.copytree(tiny_shards, shards)
    run = tmp_path / "run"
    Trainer(load_config(config_file, train_args(shards, run))).run(stop_after=3)
    shutil.rmtree(shards)
    write_shards(shards, num_scenes=12, shard_size=4, size=32, seed=5)
    assert _train(config_file, shards, run, "--resume") == 2
    line = one_line(capsys.readouterr().err)
    assert "--resume: the shards differ from those the checkpoint trained on" in line, line
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2


def test_wandb_without_the_package_is_one_line(config_file, tiny_shards, tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    assert _train(config_file, tiny_shards, tmp_path / "run", **{"log.wandb": "true"}) == 2
    assert "log.wandb: true needs the wandb package" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_non_finite_weights_are_never_checkpointed(config_file, tiny_shards, tmp_path, capsys, monkeypatch):
    real = Trainer.optimizer_step

    def poisoned(self, step):
        lr = real(self, step)
        if step == 3:  # the last step: its loss was finite, the update is not
            with torch.no_grad():
                next(self.method.parameters()).fill_(float("inf"))
        return lr

    monkeypatch.setattr(Trainer, "optimizer_step", poisoned)
    run = tmp_path / "run"
    assert _train(config_file, tiny_shards, run) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("train-ssl: step 4: parameter '") and "non-finite" in line, line
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2 and not (run / "export").exists()


def test_an_unwritable_train_out_is_one_line(config_file, tiny_shards, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _train(config_file, tiny_shards, blocker / "run") == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"train-ssl: cannot create the run folder {blocker / 'run'}: Not a directory (ENOTDIR)", line
