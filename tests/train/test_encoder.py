"""One `Encoder` per method: levels, no aliases, checkpoints, compile targets, exports."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn

from synthssl.core.config import build
from synthssl.train.checkpoint import load_method_state
from synthssl.train.export import load_backbone, load_encoder, save_backbone
from synthssl.train.methods.base import MethodContext
from synthssl.train.methods.registry import method_class
from synthssl.train.models.encoder import Encoder, build_encoder

SMALL = {
    "synthetic_contrast": {"projection": {"hidden_dim": 16}, "synthetic": {"decoder_width": 8, "disc_width": 8}},
    "dsc": {
        "projection": {"hidden_dim": 16},
        "dense_hidden_dim": 16,
        "target_momentum": 0.9,
        "synthetic": {"property_weight": 1.0, "adversarial": "gan", "disc_width": 8, "decoder_width": 8},
    },
    "simclr": {"projection": {"hidden_dim": 16}},
    "mocov2": {"projection": {"hidden_dim": 16}, "queue_size": 8},
    "densecl": {"projection": {"hidden_dim": 16}, "queue_size": 8, "dense_hidden_dim": 16},
}


def _method(name: str, arch: str = "resnet18", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cls = method_class(name)
    return cls(build(cls.Config, {"name": name, **SMALL[name]}, "method"), MethodContext(arch=arch, image_size=32))


def test_resnet_encoder_reports_levels_it_returns():
    for small_stem, strides in ((False, (4, 8, 16, 32)), (True, (1, 2, 4, 8))):
        enc = build_encoder("resnet18", small_stem).eval()
        assert enc.channels == (64, 128, 256, 512) and enc.strides == strides
        x = torch.randn(2, 3, 64, 64)
        levels = enc(x)
        assert [f.shape[1] for f in levels] == list(enc.channels)
        assert [64 // f.shape[-1] for f in levels] == list(strides)
        torch.testing.assert_close(enc.pooled(x), levels[-1].mean(dim=(2, 3)))
    assert build_encoder("resnet50").channels == (256, 512, 1024, 2048)


def test_encoder_follows_the_trunk_memory_layout():
    enc = build_encoder("resnet18").to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 32, 32)
    assert enc.input_layout(x).is_contiguous(memory_format=torch.channels_last)
    assert not enc.input_layout(x).is_contiguous()
    assert build_encoder("resnet18").input_layout(x) is x


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_method_registers_its_encoder_once(name):
    method = _method(name)
    state = method.state_dict()
    assert not any(k.startswith(("backbone.", "features.", "key_backbone.", "target_backbone.")) for k in state)
    ptrs = [v.data_ptr() for v in state.values() if v.numel()]
    assert len(ptrs) == len(set(ptrs)), "a tensor is stored under two names"
    trunk = method.encoder.trunk.state_dict()
    assert {k[len("encoder.trunk.") :] for k in state if k.startswith("encoder.trunk.")} == set(trunk)
    encoders = [m for m in method.modules() if isinstance(m, Encoder)]
    assert len(encoders) == (2 if name in ("mocov2", "densecl", "dsc") else 1)  # + momentum copy


def test_a_checkpoint_of_another_method_is_refused():
    state = _method("simclr").state_dict()
    with pytest.raises(RuntimeError, match="missing keys"):
        load_method_state(_method("mocov2"), state)


@pytest.mark.parametrize("name", ["synthetic_contrast", "mocov2", "dsc"])
def test_compile_targets_modules_whose_forward_runs(name, shard_dir, photo_dir, tmp_path):
    """The trainer compiles each child of the method; every child with weights must really be called."""
    from helpers.train_overrides import tiny_overrides

    from synthssl.train.config import load_config
    from synthssl.train.trainer import Trainer

    extra = {"train.steps": 1, "method.name": name}
    if name == "dsc":
        extra.update(
            {
                "method.target_momentum": 0.9,
                "method.semantic_warmup_steps": 0,
                "method.num_clusters": 4,
                "method.synthetic.property_weight": 1.0,
                "method.synthetic.adversarial": "gan",
            }
        )
    if name == "mocov2":
        extra["method.queue_size"] = 8
    overrides = tiny_overrides(shard_dir, photo_dir, tmp_path / name, **extra)
    if name == "mocov2":
        overrides = [o for o in overrides if not o.startswith("method.synthetic.")]
    trainer = Trainer(load_config(None, overrides))
    called: set[str] = set()
    for child_name, child in trainer.method.named_children():
        child.register_forward_hook(lambda *_, n=child_name: called.add(n))
    trainer.run()
    with_weights = {n for n, c in trainer.method.named_children() if any(True for _ in c.parameters())}
    assert with_weights <= called, f"never run: {sorted(with_weights - called)}"
    assert "encoder" in called


def test_resnet_export_is_main_format(tmp_path):
    """backbone.pt: torchvision's own keys in its order; backbone.json: exactly main's keys and values."""
    torch.manual_seed(0)
    enc = build_encoder("resnet18", small_stem=True)
    save_backbone(
        enc,
        tmp_path,
        arch="resnet18",
        small_stem=True,
        image_size=32,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        method="simclr",
        steps=3,
    )
    state = torch.load(tmp_path / "backbone.pt", weights_only=True)
    assert list(state) == list(torchvision.models.resnet18().state_dict())
    plain = torchvision.models.resnet18()
    plain.load_state_dict(state, strict=True)
    torch.testing.assert_close(plain.conv1.weight, enc.trunk.conv1.weight, rtol=0, atol=0)
    assert (tmp_path / "backbone.json").read_text() == (
        '{\n  "arch": "resnet18",\n  "small_stem": true,\n  "image_size": 32,\n'
        '  "mean": [\n    0.5,\n    0.5,\n    0.5\n  ],\n  "std": [\n    0.25,\n    0.25,\n    0.25\n  ],\n'
        '  "method": "simclr",\n  "steps": 3,\n  "heads": null\n}\n'
    )
    trunk, meta = load_backbone(tmp_path)
    assert isinstance(trunk, torchvision.models.ResNet) and meta["small_stem"] is True
    encoder, _ = load_encoder(tmp_path)
    assert encoder.strides == (1, 2, 4, 8)


# ----------------------------------------------------------------------------------------- timm
timm = pytest.importorskip("timm")


@pytest.mark.parametrize(
    "arch,channels", [("timm:resnet18d", (64, 128, 256, 512)), ("timm:convnext_atto", (40, 80, 160, 320))]
)
def test_timm_encoder_reports_levels_it_returns(arch, channels):
    enc = build_encoder(arch).eval()
    assert enc.channels == channels and enc.strides == (4, 8, 16, 32)
    levels = enc(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in levels] == [(c, 64 // s, 64 // s) for c, s in zip(channels, enc.strides)]


def test_timm_arch_errors_name_the_key():
    with pytest.raises(ValueError, match="model.arch: timm:no_such_net"):
        build_encoder("timm:no_such_net")
    with pytest.raises(ValueError, match="model.small_stem"):
        build_encoder("timm:resnet18d", small_stem=True)
    with pytest.raises(ValueError, match="not increasing"):  # a ViT: no strided levels
        build_encoder("timm:vit_tiny_patch16_224")


def test_timm_export_loads_back_and_into_timm_itself(tmp_path):
    from synthssl.train.models.property_decoder import PropertyDecoder

    torch.manual_seed(0)
    enc = build_encoder("timm:convnext_atto").eval()
    decoder = PropertyDecoder(enc.channels, 8).eval()
    save_backbone(
        enc,
        tmp_path,
        arch="timm:convnext_atto",
        small_stem=False,
        image_size=64,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        method="synthetic_contrast",
        steps=1,
        heads=decoder,
    )
    meta = json.loads((tmp_path / "backbone.json").read_text())
    assert meta["arch"] == "timm:convnext_atto" and meta["timm"]["features_only"] is True
    assert meta["timm"]["out_indices"] == [0, 1, 2, 3] and meta["heads"]["output_stride"] == 4
    assert meta["heads"]["input_multiple"] == 32 and meta["heads"]["in_channels"] == [40, 80, 160, 320]
    x = torch.randn(2, 3, 64, 64)
    loaded, _ = load_encoder(tmp_path)
    for a, b in zip(loaded(x), enc(x)):
        torch.testing.assert_close(a, b)
    # the documented recipe, with timm alone
    plain = timm.create_model(
        meta["timm"]["name"], pretrained=False, features_only=True, out_indices=meta["timm"]["out_indices"]
    )
    plain.load_state_dict(torch.load(tmp_path / "backbone.pt", weights_only=True), strict=True)
    torch.testing.assert_close(plain.eval()(x)[-1], enc(x)[-1])
    from synthssl.train.predict.model import load_predictor

    out = load_predictor(tmp_path)(x)
    assert out["depth"].shape == (2, 64, 64) and out["normal"].shape == (2, 3, 64, 64)


def test_model_arch_accepts_timm_and_names_bad_values():
    from synthssl.train.config import ConfigError, load_config

    assert load_config(None, ["model.arch=timm:convnext_atto"]).model.arch == "timm:convnext_atto"
    with pytest.raises(ConfigError, match="model.arch"):
        load_config(None, ["model.arch=vgg16"])
    with pytest.raises(ConfigError, match="model.small_stem"):
        load_config(None, ["model.arch=timm:resnet18d", "model.small_stem=true"])
