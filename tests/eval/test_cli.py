"""`train-ssl eval` end to end on a tiny export, tiny shards and a fake Fashion-MNIST."""

import json

import cv2
import pytest

from synthssl.train.eval.cli import main


def _argv(assets, out):
    """The one grammar: CONFIG.yaml key=value ..."""
    return [
        str(assets["config"]),
        f"backbone={assets['export']}",
        f"compare=[{assets['other']}]",
        f"benchmarks=[fashion-mnist:{assets['fmnist']}]",
        f"shards=[{assets['shards']}]",
        f"run={assets['run']}",
        f"out={out}",
    ]


def _run(assets, out):
    assert main(_argv(assets, out)) == 0
    return json.loads((out / "results.json").read_text())


def test_print_config_merges_the_file_and_the_keys(eval_assets, tmp_path, capsys):
    printed = []
    for argv in (_argv(eval_assets, tmp_path / "a"), ["eval_quick", "backbone=b", "out=o", "dense.steps=7"]):
        assert main([*argv, "--print-config"]) == 0
        printed.append(capsys.readouterr().out)
    assert (
        f"- fashion-mnist:{eval_assets['fmnist']}" in printed[0] and f"backbone: {eval_assets['export']}" in printed[0]
    )
    assert "steps: 7" in printed[1] and "threads: 1" in printed[1]  # a shipped config named without a path


def test_flags_of_earlier_versions_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--backbone", str(tmp_path), "--fashion-mnist"])
    assert info.value.code == 2
    assert "unrecognized arguments: --backbone" in capsys.readouterr().err


def test_help_lists_every_key_with_type_default_and_help(capsys):
    import pytest

    with pytest.raises(SystemExit) as info:
        main(["--help"])
    text = capsys.readouterr().out
    assert info.value.code == 0
    for line in (
        "backbone (str or null, default null): exported backbone",
        "benchmarks (list[str], default [])",
        "dense.steps (int, default 300): Adam steps",
        "image.linear.max_iter (int, default 100)",
    ):
        assert line in text, line


@pytest.mark.slow
def test_cli_writes_json_markdown_and_figures_deterministically(eval_assets, tmp_path):
    first = _run(eval_assets, tmp_path / "a")
    assert list(first["backbones"]) == ["pretrained", "other", "random"]
    fm = first["image"]["fashion-mnist"]["metrics"]
    for name in ("pretrained", "other", "random"):
        assert set(fm[name]) == {"knn_k5", "knn_k20", "linear"}
        assert len(fm[name]["linear"]["values"]) == 2
        dense = first["dense"]["metrics"][name]
        assert set(dense) == {"depth", "normal", "contour", "segmentation"}
        assert 0 <= dense["contour"]["ods_f"] <= 1
    # the fake Fashion-MNIST is easy: even frozen random features beat chance (10 %) clearly
    assert fm["random"]["linear"]["mean"] > 50
    md = (tmp_path / "a" / "report.md").read_text()
    assert md.count("| pretrained | other | random |") == 2  # image and dense tables, side by side
    assert "depth AbsRel" in md and "weighted k-NN, k=20" in md
    # neither export sits in a run folder that names its training shards; random init trained on nothing
    assert {n: v["held_out"] for n, v in first["dense"]["held_out"].items()} == {"pretrained": None, "other": None}
    assert "- pretrained: unknown: no run folder with config.yaml beside this export." in md
    for rel in first["figures"]:
        img = cv2.imread(str(tmp_path / "a" / rel))
        assert img is not None and img.shape[0] > 50 and img.shape[1] > 100, rel
        assert f"]({rel})" in md
    assert {
        "figures/training_curves.png",
        "figures/embedding_fashion-mnist.png",
        "figures/dense_examples_pretrained.png",
        "figures/dense_examples_random.png",
    } <= set(first["figures"])
    # same command twice -> same numbers (fresh output folder, so nothing comes from the cache)
    second = _run(eval_assets, tmp_path / "b")
    assert second["image"] == first["image"]
    assert second["dense"] == first["dense"]


def test_cli_reports_bad_input_clearly(eval_assets, tmp_path, capsys):
    code = main([f"backbone={tmp_path / 'nothing'}", "benchmarks=[fashion-mnist]", f"out={tmp_path / 'r'}"])
    assert code == 2
    assert "nothing" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("dense: {stepz: 3}\n")
    code = main(
        [str(bad), f"backbone={eval_assets['export']}", f"shards=[{eval_assets['shards']}]", f"out={tmp_path / 'r'}"]
    )
    assert code == 2
    assert "dense.stepz: unknown key" in capsys.readouterr().err
    assert main(["benchmarks=[fashion-mnist]"]) == 2
    assert "backbone: required" in capsys.readouterr().err


def test_cli_evaluates_a_timm_export_against_its_random_init(eval_assets, tmp_path):
    """A timm CNN export goes through every probe; the random baseline is the same timm model."""
    pytest.importorskip("timm")
    import torch

    from synthssl.train.export import save_backbone
    from synthssl.train.models.encoder import build_encoder

    torch.manual_seed(0)
    export = tmp_path / "timm_export"
    save_backbone(
        build_encoder("timm:convnext_atto"),
        export,
        arch="timm:convnext_atto",
        small_stem=False,
        image_size=32,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        method="test",
        steps=1,
    )
    out = tmp_path / "report"
    assert (
        main(
            [
                str(eval_assets["config"]),
                f"backbone={export}",
                f"benchmarks=[fashion-mnist:{eval_assets['fmnist']}]",
                f"shards=[{eval_assets['shards']}]",
                f"out={out}",
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert list(results["backbones"]) == ["pretrained", "random"]
    for name in ("pretrained", "random"):
        assert set(results["image"]["fashion-mnist"]["metrics"][name]) == {"knn_k5", "knn_k20", "linear"}
        assert 0 <= results["dense"]["metrics"][name]["contour"]["ods_f"] <= 1
    assert results["backbones"]["random"]["meta"]["arch"] == "timm:convnext_atto"
