"""The property heads leave the run: heads.pt + metadata, identical outputs after a round trip."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

from synthssl.train.data.batch import IMAGENET_MEAN, IMAGENET_STD
from synthssl.train.export import NoHeadsError, load_heads, method_heads, save_backbone
from synthssl.train.methods.base import MethodContext
from synthssl.train.methods.registry import method_class
from synthssl.train.models.backbone import build_backbone
from synthssl.train.models.encoder import Encoder
from synthssl.train.models.property_decoder import PropertyDecoder
from synthssl.train.predict.model import load_predictor


def _randomise_bn(module: torch.nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial running statistics (so eval mode matters)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def test_heads_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", False)
    decoder = PropertyDecoder((64, 128, 256, 512), width=16)
    _randomise_bn(backbone, 1)
    _randomise_bn(decoder, 2)
    backbone.eval(), decoder.eval()
    save_backbone(
        backbone,
        tmp_path,
        arch="resnet18",
        small_stem=False,
        image_size=32,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        method="synthetic_contrast",
        steps=7,
        heads=decoder,
    )
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ref = decoder(Encoder(backbone)(x), size=(64, 96))
    predictor = load_predictor(tmp_path)
    out = predictor(x)
    assert torch.equal(out["depth"], torch.exp(ref["depth"][:, 0]))
    assert torch.equal(out["normal"], ref["normal"])
    assert torch.equal(out["contour"], torch.sigmoid(ref["contour"][:, 0]))
    # The decoder alone, from the export alone, with the weights-only loader.
    state = torch.load(tmp_path / "heads.pt", weights_only=True)
    assert state.keys() == decoder.state_dict().keys()
    loaded, meta = load_heads(tmp_path)
    assert meta["width"] == 16 and meta["depth"] == "log_metres" and meta["output_stride"] == 4
    assert meta["input_multiple"] == 32 and meta["input"]["mean"] == list(IMAGENET_MEAN)
    assert set(meta["maps"]) == {"depth", "normal", "contour"}


def test_trained_run_exports_heads_next_to_a_plain_backbone(heads_run):
    export = heads_run / "export"
    meta = json.loads((export / "backbone.json").read_text())
    assert meta["method"] == "synthetic_contrast" and meta["heads"]["file"] == "heads.pt"
    plain = torchvision.models.resnet18()
    plain.load_state_dict(torch.load(export / "backbone.pt", weights_only=True), strict=True)
    state = torch.load(export / "heads.pt", weights_only=True)
    ckpt = torch.load(heads_run / "checkpoint.pt", weights_only=True)["method"]
    for key, value in state.items():
        assert torch.equal(value, ckpt[f"synthetic.decoder.{key}"].float()), key


def test_run_without_heads_says_so(simclr_run):
    export = simclr_run / "export"
    meta = json.loads((export / "backbone.json").read_text())
    assert meta["method"] == "simclr" and meta["heads"] is None
    assert not (export / "heads.pt").exists()
    with pytest.raises(NoHeadsError, match="'simclr'"):
        load_heads(export)


@pytest.mark.parametrize(
    "name, overrides, has_heads",
    [
        ("simclr", {}, False),
        ("synthetic_contrast", {"synthetic": {"adversarial": "none"}}, True),
        ("synthetic_contrast", {"synthetic": {"property_weight": 0.0, "adversarial": "none"}}, False),
        ("dsc", {}, False),
    ],
)
def test_method_heads_come_from_the_method_contract_only_where_trained(name, overrides, has_heads):
    from synthssl.core.config import build

    cls = method_class(name)
    method = cls(build(cls.Config, overrides), MethodContext(num_categories=4))
    heads = method_heads(method)
    assert (heads is not None) == has_heads
    assert method.exportable_heads() == ({"properties": method.synthetic.decoder} if has_heads else {})
    if has_heads:
        assert heads is method.synthetic.decoder and heads.depth_units == "log_metres"


@pytest.mark.parametrize(
    "heads, message",
    [
        (
            {"segmentation": torch.nn.Identity()},
            "export: Stub offers heads ['segmentation']; the export format holds only 'properties' (a PropertyDecoder)",
        ),
        ({"properties": torch.nn.Identity()}, "export: the 'properties' head of Stub is not a PropertyDecoder"),
    ],
)
def test_heads_the_export_format_cannot_hold_are_refused(heads, message):
    class Stub:
        def exportable_heads(self) -> dict[str, torch.nn.Module]:
            return heads

    with pytest.raises(ValueError) as info:
        method_heads(Stub())
    assert str(info.value) == message


def test_export_without_heads_removes_a_stale_heads_file(tmp_path):
    backbone = build_backbone("resnet18", False)
    common = dict(arch="resnet18", small_stem=False, image_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD, steps=1)
    save_backbone(
        backbone,
        tmp_path,
        method="synthetic_contrast",
        heads=PropertyDecoder((64, 128, 256, 512), 8, "metres"),
        **common,
    )
    assert (tmp_path / "heads.pt").is_file()
    assert load_heads(tmp_path)[0].depth_units == "metres"  # the decoder's units travel with it
    save_backbone(backbone, tmp_path, method="simclr", **common)
    assert not (tmp_path / "heads.pt").exists()
    assert json.loads((tmp_path / "backbone.json").read_text())["heads"] is None
