"""``train-ssl eval`` and ``train-ssl predict`` faults (issue 33): what they take, where they write, Ctrl-C.

Every mistake is one line, exit 2, checked before any feature is extracted or image fed; the output
folder is held by one command at a time; Ctrl-C is one line, exit 130, and leaves no temporary file.
"""

from __future__ import annotations

import shutil
import socket

import cv2
import numpy as np
import pytest
import torch
from helpers.faults import one_line, train_args

from synthssl.core.folder_lock import LOCK_NAME, FolderLock
from synthssl.train.config import load_config
from synthssl.train.eval import cli as eval_cli
from synthssl.train.predict import cli as predict_cli
from synthssl.train.trainer import Trainer


@pytest.fixture(scope="module")
def heads_run(tiny_shards, tmp_path_factory):
    """A finished 2-step synthetic_contrast run with property heads (32 px, no photos, no adaptation)."""
    run = tmp_path_factory.mktemp("heads") / "run"
    overrides = train_args(
        tiny_shards,
        run,
        **{
            "train.steps": 2,
            "method.name": "synthetic_contrast",
            "method.synthetic.adversarial": "none",
            "method.synthetic.decoder_width": 16,
            "method.photo_decorrelation_weight": 0.0,
            "method.projection.hidden_dim": 32,
            "method.projection.dim": 16,
            "optim.name": "adamw",
            "optim.lr": 0.001,
        },
    )
    Trainer(load_config(None, overrides)).run()
    return run


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8))
    return path


@pytest.fixture
def never_extracted(monkeypatch):
    """Fail the test if eval loads a benchmark (the step before feature extraction)."""

    def loaded(*args, **kwargs):
        raise AssertionError("a benchmark was loaded: features would be extracted")

    monkeypatch.setattr(eval_cli, "load_benchmark", loaded)


def _eval(*words: str) -> int:
    return eval_cli.main(list(words))


def test_eval_takes_a_run_folder_and_refuses_a_bare_backbone_pt_in_one_line(heads_run, tmp_path, capsys):
    report = tmp_path / "report"
    assert _eval(f"backbone={heads_run}", f"run={heads_run}", "random=false", f"out={report}") == 0
    assert (report / "figures" / "training_curves.png").is_file() and not (report / LOCK_NAME).exists()
    bare = tmp_path / "bare" / "backbone.pt"
    bare.parent.mkdir()
    shutil.copy(heads_run / "export" / "backbone.pt", bare)
    capsys.readouterr()
    assert _eval(f"backbone={bare}", f"run={heads_run}", f"out={tmp_path / 'r2'}") == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl eval: error: backbone: {bare} has no backbone.json beside it, so its arch, stem, image size "
        f"and normalisation are unknown; give the export folder it came from (train-ssl export RUN writes one)"
    )
    assert not (tmp_path / "r2").exists()
    # as a comparison a bare state_dict is evaluated, after one line saying what is assumed
    report3 = tmp_path / "r3"
    assert _eval(f"backbone={heads_run}", f"compare=[{bare}]", f"run={heads_run}", f"out={report3}") == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        f"train-ssl eval: warning: compare: {bare} has no backbone.json; evaluated as torchvision resnet18, "
        f"standard stem, 32 px, ImageNet mean/std (assumed)"
    ]


def test_eval_of_a_run_without_export_names_train_ssl_export(heads_run, tmp_path, capsys):
    mid = tmp_path / "mid"
    shutil.copytree(heads_run, mid)
    shutil.rmtree(mid / "export")
    assert _eval(f"backbone={mid}", f"run={mid}", f"out={tmp_path / 'r'}") == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl eval: error: backbone: the run in {mid} has no export yet; write one from its latest "
        f"checkpoint with: train-ssl export {mid}"
    )


def test_eval_out_that_is_a_file_or_in_use_is_one_line_before_features(heads_run, tmp_path, capsys, never_extracted):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _eval(f"backbone={heads_run}", "benchmarks=[fashion-mnist]", f"out={blocker}") == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl eval: error: cannot write into {blocker}: it is a file, not a folder; give a report folder"
    )
    busy = tmp_path / "busy"
    with FolderLock(busy, "out"):
        assert _eval(f"backbone={heads_run}", "benchmarks=[fashion-mnist]", f"out={busy}") == 2
        line = one_line(capsys.readouterr().err)
    assert line.startswith(f"train-ssl eval: error: out: {busy} is in use by host {socket.gethostname()}, pid "), line


def test_eval_out_read_only_is_one_line_before_features(heads_run, tmp_path, capsys, never_extracted):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders (the EROFS case is tests/faults/test_folder_lock.py)")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert _eval(f"backbone={heads_run}", "benchmarks=[fashion-mnist]", f"out={locked}") == 2
    finally:
        locked.chmod(0o755)
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl eval: error: cannot write into {locked}: Permission denied (EACCES)"
    )


def test_eval_on_cuda_without_a_gpu_is_one_line(heads_run, tmp_path, capsys, monkeypatch, never_extracted):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _eval(f"backbone={heads_run}", "benchmarks=[fashion-mnist]", "device=cuda", f"out={tmp_path / 'r'}") == 2
    assert one_line(capsys.readouterr().err) == (
        "train-ssl eval: config error: device: 'cuda' asks for CUDA, which this machine does not have; use cpu or auto"
    )
    assert not (tmp_path / "r").exists()


def test_ctrl_c_during_eval_is_one_line_exit_130_and_leaves_no_temporary_file(heads_run, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(eval_cli, "load_benchmark", interrupted)
    report = tmp_path / "report"
    assert _eval(f"backbone={heads_run}", "benchmarks=[fashion-mnist]", f"out={report}") == 130
    assert one_line(capsys.readouterr().err) == (
        "train-ssl eval: interrupted; the report was not written (extracted features stay in the cache)"
    )
    assert not list(report.rglob("*.tmp")) and not (report / LOCK_NAME).exists()


def test_predict_uses_key_value_and_refuses_the_old_flags_in_one_line(heads_run, photo, tmp_path, capsys):
    assert predict_cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for key in ("run ", "images ", "out ", "size ", "device ", "batch ", "zero_shot ", "zero_shot_root "):
        assert f"\n  {key}(" in text, key
    assert predict_cli.main(["--run", str(heads_run), "--images", str(photo)]) == 2
    assert one_line(capsys.readouterr().err) == (
        "train-ssl predict: error: --run: not an option; every setting is key=value, e.g. run=... "
        "(see train-ssl predict --help)"
    )
    out = tmp_path / "pred"
    assert predict_cli.main([f"run={heads_run / 'export'}", f"images={photo}", f"out={out}", "size=32"]) == 0
    assert np.load(out / "photo" / "depth.npy").shape == (32, 45)


def test_predict_out_that_is_a_file_is_one_line_before_any_image_is_fed(
    heads_run, photo, tmp_path, capsys, monkeypatch
):
    def fed(*args, **kwargs):
        raise AssertionError("an image was fed")

    monkeypatch.setattr(predict_cli, "_predict_images", fed)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert predict_cli.main([f"run={heads_run}", f"images={photo}", f"out={blocker}"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"train-ssl predict: error: cannot write into {blocker}: it is a file, not a folder; give a folder for the maps"
    )


def test_ctrl_c_during_predict_is_one_line_exit_130(heads_run, photo, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(predict_cli, "feed_image", interrupted)
    out = tmp_path / "pred"
    assert predict_cli.main([f"run={heads_run}", f"images={photo}", f"out={out}"]) == 130
    assert one_line(capsys.readouterr().err) == (
        "train-ssl predict: interrupted; the maps written so far are complete files"
    )
    assert not list(tmp_path.rglob("*.tmp")) and not out.exists()  # nothing was written: the folder is gone
