"""Each DSC-engineer method trains from its shipped config (train-ssl CLI) on shards or photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthssl.train.cli import main as train_ssl

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "configs"
PHOTOS = Path("/usr/share/backgrounds")
# The shipped configs are GPU-sized; shrink data and model, keep each method's options.
TINY = [
    "data.batch_size=4",
    "data.image_size=16",
    "data.workers=0",
    "model.small_stem=true",
    "model.channels_last=false",
    "train.steps=2",
    "train.checkpoint_every=0",
    "log.every=1",
    "log.tensorboard=false",
    "log.progress=false",
    "optim.warmup_steps=0",
    "train.device=cpu",
]
EXTRA = {
    "dsc": ["method.semantic_warmup_steps=1", "method.num_clusters=8", "method.dense_level=c4"],
    "dsc_photos": [
        "method.semantic_warmup_steps=0",
        "method.num_clusters=8",
        "method.dense_level=c4",
        "data.photo_base_size=32",
    ],
    "simclr_photos": ["data.photo_base_size=32"],
    "mocov2": ["method.queue_size=32"],
    "densecl": ["method.queue_size=32", "method.dense_warmup_steps=1"],
}


#: Logged by every run at every step, whatever the method.
RUN_KEYS = {"step", "loss", "photos_skipped", "lr", "images_per_s", "time"}
#: Each method's own terms at step 1 and step 2 of these runs (the DSC semantic level starts after its
#: one warm-up step, so its cluster statistics appear at step 2; dsc_photos has no warm-up).
TERMS = {
    "simclr": [{"contrast"}] * 2,
    "mocov2": [{"contrast", "momentum"}] * 2,
    "densecl": [{"global", "dense", "dense_weight", "momentum"}] * 2,
    "dsc": [
        {"instance", "pixel", "matched_fraction", "semantic_weight"},
        {"instance", "pixel", "matched_fraction", "semantic_weight", "semantic"}
        | {"cluster_entropy", "cluster_largest", "clusters_nonempty"},
    ],
}
TERMS["dsc_photos"] = [TERMS["dsc"][1]] * 2
PROPERTY_TERMS = {"depth", "normal", "contour"}  # method.synthetic.property_weight > 0 adds them
TERMS["simclr_photos"] = TERMS["simclr"]


def _loss(name: str, r: dict) -> float:
    """The loss the method's shipped config makes of its logged terms (weights of the YAML)."""
    if name.startswith("dsc"):  # weight_instance = weight_pixel = weight_semantic = 1 (property terms: 1 when on)
        properties = sum(r.get(k, 0.0) for k in PROPERTY_TERMS)
        return r["instance"] + r["pixel"] + r["semantic_weight"] * r.get("semantic", 0.0) + properties
    if name == "densecl":  # global and dense 0.5 / 0.5 once the dense term is on
        return (1.0 - r["dense_weight"]) * r["global"] + r["dense_weight"] * r["dense"]
    return r["contrast"]


def _train(name: str, out: Path, data: list[str], terms: list[set[str]] | None = None) -> list[dict]:
    """Train ``name`` for 2 steps; every step logs exactly its terms, its loss is their weighted sum
    and the export records the 2 steps."""
    code = train_ssl([str(CONFIGS / f"{name}.yaml"), *TINY, *data, *EXTRA.get(name, []), f"train.out={out}"])
    assert code == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    for r, own in zip(records, terms or TERMS[name]):
        assert set(r) == RUN_KEYS | own, sorted(set(r) ^ (RUN_KEYS | own))
        assert r["loss"] == pytest.approx(_loss(name, r), rel=1e-5), r
        assert r["photos_skipped"] == 0
    meta = json.loads((out / "export" / "backbone.json").read_text())
    assert meta["steps"] == 2 and (out / "export" / "backbone.pt").is_file()
    return records


@pytest.mark.parametrize("name", ["dsc", "simclr", "mocov2", "densecl"])
def test_trains_on_shards(name, analytic_shards, tmp_path):
    records = _train(name, tmp_path / name, [f"data.shards=[{analytic_shards}]"])
    if name == "dsc":
        assert records[0]["semantic_weight"] == 0.0 and records[1]["semantic_weight"] == 1.0
        assert 0.0 < records[1]["cluster_entropy"] <= 1.0 and records[1]["matched_fraction"] > 0
        assert records[1]["clusters_nonempty"] <= 8  # method.num_clusters
    if name == "densecl":
        assert records[0]["dense_weight"] == 0.0 and records[1]["dense_weight"] == 0.5
    if name in ("mocov2", "densecl"):
        assert all(r["momentum"] == pytest.approx(0.99) for r in records)  # the shipped target momentum


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="no photo folder (apt package mate-backgrounds)")
@pytest.mark.parametrize(
    "name,data",
    [
        ("dsc_photos", []),
        ("simclr_photos", []),
        ("densecl", ["data.photo_pairs=true", "data.shards=[]", "data.photo_base_size=32"]),
    ],
)
def test_trains_on_a_photo_folder(name, data, tmp_path):
    records = _train(name, tmp_path / name, [f"data.photos={PHOTOS}", *data])
    if name == "dsc_photos":
        assert records[0]["matched_fraction"] > 0 and "semantic" in records[0]


def test_geometric_rule_on_photos_is_a_config_error(tmp_path, capsys):
    code = train_ssl(
        [
            str(CONFIGS / "dsc_photos.yaml"),
            *TINY,
            "method.neighbours=geometric",
            f"data.photos={PHOTOS}",
            f"train.out={tmp_path}",
        ]
    )
    assert code == 2
    assert "geometry" in capsys.readouterr().err


def test_dsc_trains_with_a_timm_backbone(analytic_shards, tmp_path):
    """A timm CNN (features_only) in place of the ResNet: every level, and the synthetic terms, run."""
    pytest.importorskip("timm")
    out = tmp_path / "dsc_timm"
    records = _train(
        "dsc",
        out,
        [
            f"data.shards=[{analytic_shards}]",
            "model.arch=timm:resnet18d",
            "model.small_stem=false",
            "data.image_size=32",
            "method.synthetic.property_weight=1.0",
        ],
        [terms | PROPERTY_TERMS for terms in TERMS["dsc"]],
    )
    assert records[1]["semantic_weight"] == 1.0 and records[1]["matched_fraction"] > 0
    meta = json.loads((out / "export" / "backbone.json").read_text())
    assert meta["arch"] == "timm:resnet18d" and meta["heads"]["in_channels"] == [64, 128, 256, 512]
