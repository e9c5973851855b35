"""The eval report says whether the dense probes' shards were held out from each backbone's training."""

from __future__ import annotations

from pathlib import Path

from helpers.provenance_shards import provenance_render

from synthssl.train.eval.heldout import held_out, training_data
from synthssl.train.eval.report import markdown_report


def _run(tmp_path: Path, name: str, shards: list[Path], val_fraction: float = 0.0) -> Path:
    """A run folder as train-ssl leaves it, as far as held_out reads it: config.yaml and export/."""
    run = tmp_path / name
    (run / "export").mkdir(parents=True)
    listed = ", ".join(str(s) for s in shards)
    (run / "config.yaml").write_text(f"data:\n  shards: [{listed}]\n  val_fraction: {val_fraction}\n")
    return run / "export"


def test_held_out_compares_render_ids_and_the_val_split(tmp_path):
    train = provenance_render(tmp_path / "train", render_id="1" * 16)
    copy = provenance_render(tmp_path / "copy", render_id="1" * 16)  # the same render in another folder
    other = provenance_render(tmp_path / "other", render_id="2" * 16, seed=1)
    export = _run(tmp_path, "run", [train])
    assert training_data(export) == ([str(train)], 0.0)
    assert training_data(export / "backbone.pt") == ([str(train)], 0.0)
    assert held_out([other], export, None, 0.0).held_out is True
    same = held_out([copy], export, None, 0.0)
    assert same.held_out is False and same.reason == "not held out: it trained on these renders"
    split_export = _run(tmp_path, "split_run", [train], val_fraction=0.25)
    assert held_out([train], split_export, "val", 0.25).held_out is True
    assert held_out([train], split_export, "val", 0.5).held_out is False  # another split is not the held-out one
    assert held_out([train], split_export, None, 0.0).held_out is False


def test_held_out_without_render_ids_compares_folders_and_unknown_without_a_run(tmp_path):
    missing = tmp_path / "gone"  # training shards no longer on disk: the folders are compared
    export = _run(tmp_path, "run", [missing])
    assert held_out([missing], export, None, 0.0).held_out is False
    assert held_out([tmp_path / "elsewhere"], export, None, 0.0).held_out is True
    photos = _run(tmp_path, "photos_run", [])
    assert held_out([missing], photos, None, 0.0) == held_out([tmp_path], photos, None, 0.0)
    assert held_out([missing], photos, None, 0.0).reason == "held out: the run trained on photos only"
    plain = tmp_path / "plain.pt"
    unknown = held_out([missing], plain, None, 0.0)
    assert unknown.held_out is None and unknown.reason.startswith("unknown")


def test_report_states_the_verdict_per_backbone():
    metrics = {
        "depth": {"abs_rel": 0.2, "rmse": 0.3, "delta1": 60.0},
        "normal": {"mean_angle": 30.0, "median_angle": 25.0, "under_11.25": 10.0, "under_22.5": 40.0, "under_30": 50.0},
        "contour": {"ods_f": 0.5},
        "segmentation": {"miou": 20.0, "pixel_acc": 60.0},
    }
    meta = {"arch": "resnet18", "small_stem": False, "method": "synthetic_contrast", "steps": 4, "image_size": 32}
    results = {
        "backbones": {"pretrained": {"source": "run/export", "meta": meta}},
        "dense": {
            "head": "linear",
            "num_train_views": 8,
            "num_test_views": 4,
            "shards": ["data/heldout"],
            "held_out": {"pretrained": {"held_out": False, "reason": "not held out: it trained on these renders"}},
            "metrics": {"pretrained": metrics},
        },
    }
    text = markdown_report(results)
    assert "## Dense probes on rendered views (frozen backbone)" in text
    assert "Shards: `data/heldout`.\n- pretrained: not held out: it trained on these renders.\n" in text
