"""Backbones under evaluation: exported ones, plain torchvision state_dicts, random init.

Each is held as an `Encoder` (``.encoder``: levels, channels, strides), so the probes
work the same for torchvision ResNets and timm exports.

Every evaluated backbone carries the metadata of the export format
(:mod:`synthssl.train.export`): ``arch``, ``small_stem``, ``image_size``, ``mean``,
``std``, ``method``, ``steps``. The backbone under test is an export: a run folder (its
``export/``), an export folder, or a backbone.pt with its backbone.json
(`synthssl.train.export.find_export`); a bare backbone.pt is refused, since nothing says how
to feed it. Only as a comparison (``compare``) a plain torchvision state_dict is evaluated,
after a one-line warning saying what is assumed: its arch read off the state_dict, the
standard stem, ImageNet normalisation and the tested backbone's image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from synthssl.train.data.batch import IMAGENET_MEAN, IMAGENET_STD
from synthssl.train.export import find_export, load_encoder
from synthssl.train.models.backbone import build_backbone
from synthssl.train.models.encoder import Encoder, build_encoder
from synthssl.train.models.timm_backbone import build_timm_backbone, timm_name

__all__ = ["EvalBackbone", "load_eval_backbone", "random_backbone", "infer_arch", "unique_name"]

_IMAGENET = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


@dataclass
class EvalBackbone:
    """A named frozen encoder with its export metadata and where it came from."""

    name: str
    encoder: Encoder
    meta: dict
    source: str


def infer_arch(state: dict[str, torch.Tensor], path: Path) -> str:
    """ "resnet18", "resnet34" or "resnet50" from the state_dict's keys."""
    if "layer1.0.conv1.weight" not in state:
        raise ValueError(f"{path}: not a torchvision ResNet state_dict (no 'layer1.0.conv1.weight')")
    blocks3 = len({k.split(".")[1] for k in state if k.startswith("layer3.")})
    if "layer1.0.conv3.weight" in state:
        if blocks3 != 6:
            raise ValueError(f"{path}: bottleneck ResNet with {blocks3} blocks in layer3; only resnet50 is supported")
        return "resnet50"
    return {2: "resnet18", 6: "resnet34"}.get(blocks3) or _unsupported(path, blocks3)


def _unsupported(path: Path, blocks: int) -> str:
    raise ValueError(f"{path}: basic-block ResNet with {blocks} blocks in layer3; expected resnet18/34")


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``, ... if already taken."""
    out, i = name, 2
    while out in taken:
        out, i = f"{name}-{i}", i + 1
    return out


def load_eval_backbone(
    path: str | Path, name: str, reference_meta: dict | None = None, option: str = "backbone", warn=None
) -> EvalBackbone:
    """An export (run folder, export folder, or backbone.pt with backbone.json; ``source`` is the export
    folder) or, with ``reference_meta`` (a comparison: it supplies image_size), a plain torchvision ResNet
    state_dict file, announced by ``warn(line)``. Errors name ``option``."""
    path = Path(path)
    pt = path
    if path.is_dir() or path.with_name("backbone.json").is_file() or reference_meta is None:
        export = find_export(path, option)
        encoder, meta = load_encoder(export)
        return EvalBackbone(name, encoder, dict(meta), str(export))
    if not pt.is_file():
        raise FileNotFoundError(f"{option}: {pt} does not exist")
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign files
        raise ValueError(f"{pt}: cannot be read as a torch state_dict ({exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{pt}: expected a state_dict (dict of tensors), got {type(state).__name__}")
    arch = infer_arch(state, pt)
    resnet = build_backbone(arch, small_stem=False)
    try:
        resnet.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{pt}: does not load strictly into torchvision {arch}: {exc}") from exc
    image_size = int(reference_meta["image_size"])
    if warn is not None:
        warn(
            f"{option}: {pt} has no backbone.json; evaluated as torchvision {arch}, standard stem, "
            f"{image_size} px, ImageNet mean/std (assumed)"
        )
    meta = {
        "arch": arch,
        "small_stem": False,
        "image_size": image_size,
        **_IMAGENET,
        "method": "state_dict",
        "steps": 0,
    }
    return EvalBackbone(name, Encoder(resnet).eval(), meta, str(pt))


def random_backbone(reference_meta: dict, seed: int, name: str = "random") -> EvalBackbone:
    """Random init (``torch.manual_seed(seed)``) with the reference's arch (torchvision or
    timm, same feature levels), stem, image size and normalisation."""
    torch.manual_seed(seed)
    arch = reference_meta["arch"]
    if "timm" in reference_meta:
        encoder = Encoder(
            build_timm_backbone(timm_name(arch), False, tuple(int(i) for i in reference_meta["timm"]["out_indices"]))
        )
    else:
        encoder = build_encoder(arch, bool(reference_meta["small_stem"]))
    meta = {**reference_meta, "method": "random_init", "steps": 0}
    return EvalBackbone(name, encoder.eval(), meta, f"random init (seed {seed})")
