"""The lifecycle of a training run (issue 33): one writer per run folder, resume and extend from the
folder alone, export at any time, the start-up summary; each mistake one line, exit 2, nothing lost."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import pytest
import torch
import yaml
from helpers.faults import one_line, start_cli, train_args, wait_for

from synthssl.core.folder_lock import LOCK_NAME
from synthssl.train.cli import main
from synthssl.train.config import load_config
from synthssl.train.optim import lr_factor
from synthssl.train.trainer import Trainer

LR = 3e-4
OPTIM = {"optim.name": "adamw", "optim.lr": LR, "optim.warmup_steps": 1}


def _args(shards, out, **extra) -> list[str]:
    """The fault suite's seconds-long SimCLR run with AdamW at lr 3e-4 and one warm-up step."""
    return train_args(shards, out, **{**OPTIM, **extra})


def _steps(run) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _checkpoint(run) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _files(run) -> dict:
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- one writer


@pytest.mark.slow
def test_a_second_start_into_a_training_run_is_refused_and_the_first_run_is_kept(tiny_shards, tmp_path, capsys):
    """Issue 33, case 1: a run trains in R; a second start into R, with or without --resume, is refused
    naming the holder, and R ends holding the first run's config, metrics, checkpoint and export."""
    run = tmp_path / "R"
    first = start_cli("train.cli", *_args(tiny_shards, run, **{"train.steps": 6}))
    try:
        wait_for(lambda: (run / "metrics.jsonl").is_file() and _steps(run), 120, "the first run's first step")
        first.send_signal(signal.SIGSTOP)  # it stays in the middle of training while the others try
        before = _files(run)
        holder = f"train-ssl: train.out: {run} is in use by host {socket.gethostname()}, pid {first.pid} ("
        for extra in ([], ["--resume"]):
            assert main([*_args(tiny_shards, run, **{"train.steps": 3, "train.seed": 7}), *extra]) == 2
            line = one_line(capsys.readouterr().err)
            assert line.startswith(holder) and line.endswith("or give another train.out=DIR"), line
        assert _files(run) == before  # the refused starts wrote nothing
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["train"]["steps"], saved["train"]["seed"]) == (6, 0)
    assert _steps(run) == [1, 2, 3, 4, 5, 6]
    state = _checkpoint(run)
    assert state["step"] == 6 and state["config"]["train"]["seed"] == 0
    assert json.loads((run / "export" / "backbone.json").read_text())["steps"] == 6
    assert not (run / LOCK_NAME).exists()


@pytest.mark.slow
def test_a_run_killed_hard_leaves_a_stale_lock_that_the_resume_takes_over(tiny_shards, tmp_path, capsys):
    run = tmp_path / "R"
    first = start_cli("train.cli", *_args(tiny_shards, run, **{"train.steps": 200, "train.checkpoint_every": 1}))
    try:
        wait_for(lambda: (run / "checkpoint.pt").is_file(), 120, "the first checkpoint")
    finally:
        first.send_signal(signal.SIGKILL)  # no handler runs: the lock file stays behind
        first.communicate()
    assert json.loads((run / LOCK_NAME).read_text())["pid"] == first.pid
    done = _checkpoint(run)["step"]
    assert main(["--resume", f"train.out={run}", f"train.steps={done + 1}"]) == 0
    err = capsys.readouterr().err
    assert f"train-ssl: resume: train.steps: 200 -> {done + 1}" in err.splitlines(), err
    assert _checkpoint(run)["step"] == done + 1 and not (run / LOCK_NAME).exists()


# --------------------------------------------------------------------------- resume


def test_resume_from_the_run_folder_alone_continues_exactly_and_shows_each_change(tiny_shards, tmp_path, capsys):
    full = tmp_path / "full"
    assert main(_args(tiny_shards, full)) == 0
    run = tmp_path / "run"
    Trainer(load_config(None, _args(tiny_shards, run))).run(stop_after=3)  # killed after the step-2 checkpoint
    capsys.readouterr()
    assert main(["--resume", f"train.out={run}", "log.every=2"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "train-ssl: resume: 2 steps done" in err and "train-ssl: resume: log.every: 1 -> 2" in err, err
    assert _same_weights(_checkpoint(full)["method"], _checkpoint(run)["method"])
    assert _steps(run) == [1, 2, 4]  # logged every step up to the checkpoint, then every second step


def test_resume_refuses_each_key_that_changes_what_was_learned_and_says_what_to_do(tiny_shards, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_args(tiny_shards, run)) == 0
    before = _files(run)
    capsys.readouterr()
    assert main(["--resume", str(run), "optim.lr=0.1", "train.seed=3"]) == 2  # RUN stands for train.out=RUN
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl: config error: --resume: 2 key(s) would change what the run in {run} learned in its 4 "
        f"steps: optim.lr (checkpoint 0.0003, now 0.1), train.seed (checkpoint 0, now 3); resume with the "
        f"checkpoint's values (optim.lr=0.0003 train.seed=0), or start a new run from this config (another "
        f"train.out=DIR, or --overwrite to move the old run aside)"
    )
    assert main(["--resume", f"train.out={run}", "train.steps=3"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl: config error: --resume: train.steps=3 is below the 4 steps the run in {run} has done; "
        f"give train.steps >= 4 (or leave it out)"
    )
    assert _files(run) == before

    # An edited config.yaml: the advice names the value to resume with, not the edited file.
    config = run / "config.yaml"
    config.write_text(config.read_text().replace(f"lr: {LR}", "lr: 0.1"))
    assert main(["--resume", f"train.out={run}", "train.steps=5"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "optim.lr (checkpoint 0.0003, now 0.1)" in line and "(optim.lr=0.0003)" in line, line
    assert "config.yaml" not in line
    assert main(["--resume", f"train.out={run}", "train.steps=5", "optim.lr=0.0003"]) == 0  # the advice works
    assert _checkpoint(run)["step"] == 5 and _steps(run) == [1, 2, 3, 4, 5]


def test_resume_where_no_run_exists_is_one_line_before_anything_is_built(tiny_shards, tmp_path, capsys, monkeypatch):
    early = tmp_path / "early"
    Trainer(load_config(None, _args(tiny_shards, early, **{"train.checkpoint_every": 4}))).run(stop_after=1)
    assert (early / "config.yaml").is_file() and not (early / "checkpoint.pt").exists()
    from synthssl.train import trainer

    def prepared(*args, **kwargs):
        raise AssertionError("the pre-flight checks ran: the model would be built")

    monkeypatch.setattr(trainer, "prepare", prepared)
    capsys.readouterr()
    missing = tmp_path / "missing"
    assert main(["--resume", f"train.out={missing}"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl: config error: --resume: {missing} (train.out) does not exist; give train.out=RUN of an "
        f"earlier run, or start a new run without --resume"
    )
    assert main(["simclr", "--resume", *_args(tiny_shards, missing)]) == 2  # a config file and its overrides
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl: config error: --resume: {missing} (train.out) holds no run; start one without --resume, "
        f"or give train.out=RUN of an earlier run"
    )
    assert not missing.exists()
    assert main(["--resume", f"train.out={early}"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl: config error: --resume: {early} (train.out) holds no checkpoint.pt (the run there stopped "
        f"before its first checkpoint, see train.checkpoint_every); start it again without --resume"
    )
    assert not (early / LOCK_NAME).exists()


@pytest.mark.slow
def test_extending_steps_continues_on_the_longer_schedule(tiny_shards, tmp_path, capsys):
    """train.steps 4 -> 6 on resume: steps 1-4 keep the lr of the 4-step schedule, steps 5-6 take the
    6-step schedule's; with a flat schedule the extended run is the run started with 6 steps."""
    run = tmp_path / "run"
    assert main(_args(tiny_shards, run)) == 0
    assert main(["--resume", f"train.out={run}", "train.steps=6"]) == 0
    lrs = [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = [LR * lr_factor(s, 4, 1) for s in range(4)] + [LR * lr_factor(s, 6, 1) for s in (4, 5)]
    assert lrs == pytest.approx(expected, rel=1e-12, abs=0)
    assert json.loads((run / "export" / "backbone.json").read_text())["steps"] == 6

    flat = {"optim.warmup_steps": 0, "optim.min_lr_ratio": 1.0}
    extended, longer = tmp_path / "extended", tmp_path / "longer"
    assert main(_args(tiny_shards, extended, **flat)) == 0
    assert main(["--resume", f"train.out={extended}", "train.steps=6"]) == 0
    assert main(_args(tiny_shards, longer, **{**flat, "train.steps": 6})) == 0
    assert _checkpoint(extended)["step"] == _checkpoint(longer)["step"] == 6
    assert _same_weights(_checkpoint(extended)["method"], _checkpoint(longer)["method"])
    capsys.readouterr()
    assert main(["--resume", f"train.out={longer}"]) == 0  # a finished run: nothing to train, nothing touched
    assert "has done all its train.steps=6; nothing to train" in capsys.readouterr().err


# --------------------------------------------------------------------------- start-up summary


def test_the_start_up_summary_is_printed_and_kept_in_the_provenance(tiny_shards, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    import cv2
    import numpy as np

    for i in range(3):
        cv2.imwrite(str(photos / f"p{i}.jpg"), np.full((40, 50, 3), 60 * i, np.uint8))
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    run = tmp_path / "run"
    extra = {"data.photos": str(photos), "optim.warmup_steps": 10, "train.checkpoint_every": 10}
    assert main(_args(tiny_shards, run, **extra)) == 0
    err = capsys.readouterr().err.splitlines()
    peak = LR * 4 / 10
    lines = [
        "device cpu, precision fp32, 1 rank",
        "data: 12 scenes in 3 shards of 1 folder; 4 photos (1 unreadable, skipped while training)",
        "batch: 4 view pairs per step (4 per rank)",
        f"schedule: 4 steps, adamw, lr warm-up 10 steps (the whole run), highest {peak:.4g} at step 4",
        f"output: {run}",
    ]
    warnings = [
        f"optim.warmup_steps: the warm-up (10 steps) is longer than the run (train.steps=4): the learning rate "
        f"peaks at {peak:.4g} and never reaches optim.lr=0.0003; lower optim.warmup_steps or raise train.steps",
        "train.checkpoint_every: 10 is longer than the run (train.steps=4): the only checkpoint is the one at "
        "the end (Ctrl-C and SIGTERM write one too); lower it to resume from earlier steps",
    ]
    first_step = next(i for i, line in enumerate(err) if line.startswith("train-ssl: step 1/4"))
    assert err[:first_step] == [f"train-ssl: {x}" for x in lines] + [f"train-ssl: warning: {x}" for x in warnings]
    startup = yaml.safe_load((run / "config.yaml").read_text())["provenance"]["startup"]
    assert startup["lines"] == lines and startup["warnings"] == warnings
    assert (startup["device"], startup["world_size"], startup["scenes"], startup["photos_unreadable"]) == (
        "cpu",
        1,
        12,
        1,
    )
    assert startup["batch"] == {"view_pairs": 4, "per_rank": 4, "real_photos": 0}
    assert startup["lr"] == {
        "warmup_steps": 10,
        "peak": pytest.approx(peak),
        "peak_step": 4,
        "end": pytest.approx(peak),
    }


def test_a_photo_run_with_one_photo_gets_advice_it_can_follow(tmp_path, capsys):
    import cv2
    import numpy as np

    photos = tmp_path / "one"
    photos.mkdir()
    cv2.imwrite(str(photos / "only.jpg"), np.full((64, 64, 3), 90, np.uint8))
    out = tmp_path / "run"
    assert main(["dsc_photos", f"data.photos={photos}", "data.image_size=32", f"train.out={out}"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line == (
        f"train-ssl: config error: data.photos: a batch needs at least 2 different items (data.batch_size >= 2), "
        f"and {photos} holds 1; add data"
    )
    assert not out.exists()  # a failed start claims nothing


# --------------------------------------------------------------------------- export


def test_export_from_the_checkpoint_is_the_runs_own_export_and_never_replaces_a_newer_one(
    tiny_shards, tmp_path, capsys
):
    from synthssl.train.export_cli import main as export_main

    run = tmp_path / "run"
    assert main(_args(tiny_shards, run, **{"train.ema_decay": 0.9})) == 0
    (run / "export").rename(tmp_path / "by_the_run")
    capsys.readouterr()
    assert export_main([str(run)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"train-ssl export: step 4 of {run / 'checkpoint.pt'} -> {run / 'export'} (backbone.pt, backbone.json)"
    )
    ours, theirs = run / "export", tmp_path / "by_the_run"
    assert json.loads((ours / "backbone.json").read_text()) == json.loads((theirs / "backbone.json").read_text())
    a, b = (torch.load(d / "backbone.pt", weights_only=True) for d in (ours, theirs))
    assert _same_weights(a, b)  # the weight average, as the run exported it

    older = tmp_path / "older"
    Trainer(load_config(None, _args(tiny_shards, older, **{"train.ema_decay": 0.9}))).run(stop_after=3)
    assert export_main([str(run), f"checkpoint={older / 'checkpoint.pt'}"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl export: error: out: {run / 'export'} already holds the export of step 4, newer than this "
        f"checkpoint's step 2; it is kept; give another out=DIR"
    )
    assert export_main([f"run={run}", f"checkpoint={older / 'checkpoint.pt'}", f"out={tmp_path / 'e2'}"]) == 0
    assert json.loads((tmp_path / "e2" / "backbone.json").read_text())["steps"] == 2
    assert export_main([str(tmp_path / "nothing")]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl export: error: run: {tmp_path / 'nothing'} is not a run folder (train.out of a train-ssl run)"
    )
    assert export_main([str(run), "--checkpoint", "x"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "train-ssl export: error: --checkpoint: not an option; every setting is key=value, e.g. checkpoint=... "
        "(see train-ssl export --help)"
    )


def _heads_args(shards, out, **extra) -> list[str]:
    """A tiny synthetic_contrast run with its property heads (no photos, no adaptation)."""
    items = {
        "method.name": "synthetic_contrast",
        "method.synthetic.adversarial": "none",
        "method.synthetic.decoder_width": 16,
        "method.photo_decorrelation_weight": 0.0,
        "method.projection.hidden_dim": 32,
        "method.projection.dim": 16,
        **extra,
    }
    return _args(shards, out, **items)


@pytest.mark.slow
def test_a_run_still_training_is_exported_and_eval_and_predict_take_the_export(tiny_shards, tmp_path, capsys):
    import cv2
    import numpy as np

    from synthssl.train.eval.cli import main as eval_main
    from synthssl.train.export_cli import main as export_main
    from synthssl.train.predict.cli import main as predict_main

    run = tmp_path / "run"
    training = start_cli(
        "train.cli", *_heads_args(tiny_shards, run, **{"train.steps": 20, "train.checkpoint_every": 1})
    )
    try:
        wait_for(lambda: (run / "checkpoint.pt").is_file(), 180, "the first checkpoint")
        config = (run / "config.yaml").read_bytes()
        assert export_main([str(run)]) == 0  # while the run trains and writes checkpoints
        assert "train-ssl export: step " in capsys.readouterr().out

        training.send_signal(signal.SIGSTOP)  # hold it at one checkpoint to compare the export with it
        try:
            # the signal is asynchronous: wait until the trainer is stopped, so no rename lands in between
            stat = Path(f"/proc/{training.pid}/stat")
            wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "T", 30, "the trainer to stop")
            assert export_main([str(run)]) == 0
            state = _checkpoint(run)
        finally:
            training.send_signal(signal.SIGCONT)
        meta = json.loads((run / "export" / "backbone.json").read_text())
        assert meta["steps"] == state["step"] and meta["heads"]["file"] == "heads.pt"
        exported = torch.load(run / "export" / "backbone.pt", weights_only=True)
        assert _same_weights(exported, {k: state["method"][f"encoder.trunk.{k}"] for k in exported})
        assert (run / "config.yaml").read_bytes() == config  # the run was not touched

        photo = tmp_path / "photo.jpg"
        cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8))
        assert predict_main([f"run={run}", f"images={photo}", f"out={tmp_path / 'pred'}", "device=cpu"]) == 0
        assert np.load(tmp_path / "pred" / "photo" / "depth.npy").shape == (64, 90)
        report = tmp_path / "report"
        assert eval_main([f"backbone={run}", f"run={run}", "random=false", f"out={report}"]) == 0
        results = json.loads((report / "results.json").read_text())
        assert results["backbones"]["pretrained"]["source"] == str(run / "export")
        assert results["backbones"]["pretrained"]["meta"]["steps"] >= state["step"]
    finally:
        _, err = training.communicate(timeout=600)
    assert training.returncode == 0, err
    assert json.loads((run / "export" / "backbone.json").read_text())["steps"] == 20  # the run's own, at its end
