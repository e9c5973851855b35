"""Backbone export format (a shared contract; keep stable).

``<dir>/backbone.pt``: the encoder trunk's plain ``state_dict`` (tensors on CPU, fp32):
for a torchvision ResNet all keys, loadable with ``strict=True`` into
``torchvision.models.resnet18()`` / ``resnet50()`` (its ``fc`` is torchvision's random
initialisation, untrained: it is there only for the strict load, not a classifier); for
``model.arch: timm:NAME`` the timm ``features_only`` model's, loadable with
``strict=True`` into ``timm.create_model(NAME, pretrained=False, features_only=True,
out_indices=OUT_INDICES)`` as ``backbone.json["timm"]`` says.
``<dir>/backbone.json``: ``{"arch", "small_stem", "image_size", "mean", "std",
"method", "steps", "heads"}`` -- small_stem tells loaders to apply the stem change of
`synthssl.train.models.backbone.build_backbone` (the weights load either way);
mean/std are the input normalisation (RGB in [0,1] -> (x - mean) / std). timm exports
add ``"timm": {"name", "features_only": true, "out_indices", "channels", "strides",
"timm_version"}`` (arch is ``"timm:NAME"``); torchvision exports are unchanged.
`load_backbone` returns the trunk of either kind, `load_encoder` the `Encoder` around it.

``heads`` describes the property decoder when the method offers one through the method
contract (`synthssl.train.methods.base.Method.exportable_heads`: ``synthetic_contrast``, or
``dsc`` with ``property_weight > 0``), else ``null``:

``<dir>/heads.pt``: the `PropertyDecoder` ``state_dict`` (CPU fp32 tensors only, so
``torch.load(..., weights_only=True)`` reads it) and ``backbone.json["heads"]``::

    {"file": "heads.pt", "decoder": "PropertyDecoder", "in_channels": [64, 128, 256, 512],
     "width": 64, "levels": ["c2", "c3", "c4", "c5"], "maps": {...}, "output_stride": 4,
     "input_multiple": 32, "input": {...}, "depth": "log_metres"}

``output_stride`` is the stride of the decoder's finest map (the encoder's c2: for
ResNets 4 with the standard stem, 1 with the small one; outputs are upsampled bilinearly
to the input size); ``input_multiple`` the stride of c5 (inputs whose sides are
multiples of it keep every level aligned). ``depth`` is the decoder's ``depth_units``: ``log_metres``
(raw output = log depth) or ``metres``.
`load_heads` rebuilds the decoder from this alone, without the run's config.
All files are written atomically; heads.pt is written before backbone.json.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch
import torchvision
from torch import nn

from synthssl.core.console import publish_mode
from synthssl.core.errors import OutputWriteError, write_failure
from synthssl.train.models.backbone import build_backbone
from synthssl.train.models.encoder import Encoder
from synthssl.train.models.property_decoder import PropertyDecoder
from synthssl.train.models.timm_backbone import build_timm_backbone, is_timm_arch, timm_load_spec, timm_name

if TYPE_CHECKING:
    from synthssl.train.methods.base import Method

META_KEYS = ("arch", "small_stem", "image_size", "mean", "std", "method", "steps")
HEADS_FILE = "heads.pt"

#: What each map of the decoder means (written into backbone.json["heads"]["maps"]).
HEAD_MAPS = {
    "depth": {"channels": 1, "meaning": "z-depth along the optical axis, see 'depth'"},
    "normal": {
        "channels": 3,
        "meaning": "unit surface normal, OpenCV camera frame (x right, y down, z forward), facing the camera (z < 0)",
    },
    "contour": {"channels": 1, "meaning": "logit of 'pixel lies on an instance contour'"},
}


#: The one head the export format holds (heads.pt): the name a method gives it in `Method.exportable_heads`.
PROPERTY_HEADS = "properties"


def method_heads(method: Method) -> Optional[PropertyDecoder]:
    """The property decoder ``method.exportable_heads()`` offers, else None.

    ValueError for a head the export format cannot hold (another name, or not a `PropertyDecoder`).
    """
    heads = dict(method.exportable_heads())
    decoder = heads.pop(PROPERTY_HEADS, None)
    if heads:
        raise ValueError(
            f"export: {type(method).__name__} offers heads {sorted(heads)}; the export format holds only "
            f"{PROPERTY_HEADS!r} (a PropertyDecoder)"
        )
    if decoder is not None and not isinstance(decoder, PropertyDecoder):
        raise ValueError(f"export: the {PROPERTY_HEADS!r} head of {type(method).__name__} is not a PropertyDecoder")
    return decoder


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
        for k, v in module.state_dict().items()
    }


def _heads_meta(decoder: PropertyDecoder, encoder: Encoder, arch: str, mean, std) -> dict:
    in_channels = [int(m.in_channels) for m in decoder.lateral]
    if in_channels != list(encoder.channels):
        raise ValueError(f"export: decoder inputs {in_channels} do not match {arch} levels {list(encoder.channels)}")
    return {
        "file": HEADS_FILE,
        "decoder": "PropertyDecoder",
        "in_channels": in_channels,
        "width": int(decoder.depth.in_channels),
        "levels": ["c2", "c3", "c4", "c5"],
        "maps": HEAD_MAPS,
        "output_stride": int(encoder.strides[0]),
        "input_multiple": int(encoder.strides[-1]),
        "input": {"range": "RGB in [0, 1]", "mean": [float(m) for m in mean], "std": [float(s) for s in std]},
        "depth": decoder.depth_units,
    }


def _atomic_write_bytes(path: Path, write) -> None:
    """Write through a temp file (given the user's umask mode) and os.replace; a failed write
    (full disk, no permission) raises OutputWriteError naming `path`, with the temp file removed."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        publish_mode(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, (OSError, RuntimeError)):  # torch.save reports a full disk as a RuntimeError
            raise OutputWriteError(path, write_failure(exc, path.parent)) from exc
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temp file next to `path`, then os.replace."""
    _atomic_write_bytes(Path(path), lambda handle: torch.save(obj, handle))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write text to a temp file next to `path`, then os.replace."""
    _atomic_write_bytes(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def atomic_save_npy(array, path: str | os.PathLike) -> None:
    """numpy.save to a temp file next to `path`, then os.replace (`path` should end in .npy)."""
    import numpy as np

    _atomic_write_bytes(Path(path), lambda handle: np.save(handle, array))


def save_backbone(
    encoder: nn.Module,
    directory: str | os.PathLike,
    *,
    arch: str,
    small_stem: bool,
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    method: str,
    steps: int,
    heads: Optional[PropertyDecoder] = None,
) -> Path:
    """Write backbone.pt + backbone.json (+ heads.pt when `heads`) into `directory`; returns the .pt path.

    encoder: an `Encoder` (or a bare trunk: torchvision ResNet / timm features_only model);
    its ``trunk`` is what backbone.pt holds. heads: the property decoder (`method_heads`).
    Without `heads`, backbone.json says ``"heads": null`` and a stale heads.pt is removed.
    """
    directory = Path(directory)
    encoder = encoder if isinstance(encoder, Encoder) else Encoder(encoder)
    state = _cpu_state(encoder.trunk)
    meta = {
        "arch": arch,
        "small_stem": bool(small_stem),
        "image_size": int(image_size),
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "method": method,
        "steps": int(steps),
    }
    if is_timm_arch(arch):
        meta["timm"] = timm_load_spec(timm_name(arch), encoder.trunk)
    else:
        reference = getattr(torchvision.models, arch)(weights=None).state_dict()
        missing = sorted(set(reference) - set(state))
        extra = sorted(set(state) - set(reference))
        if missing or extra:
            raise ValueError(
                f"export: backbone state_dict does not match torchvision {arch} "
                f"(missing {missing[:5]}, unexpected {extra[:5]})"
            )
    meta["heads"] = None
    pt = directory / "backbone.pt"
    atomic_torch_save(state, pt)
    if heads is not None:
        meta["heads"] = _heads_meta(heads, encoder, arch, mean, std)
        atomic_torch_save(_cpu_state(heads), directory / HEADS_FILE)
    elif (directory / HEADS_FILE).exists():
        (directory / HEADS_FILE).unlink()
    atomic_write_text(json.dumps(meta, indent=2) + "\n", directory / "backbone.json")
    return pt


def _state_mismatch(expected: dict, found: Any) -> str:
    """'3 missing keys, 30 unexpected, 5 of another shape, e.g. layer1.0.conv3.weight' (for one-line errors)."""
    if not isinstance(found, dict):
        return f"a {type(found).__name__}, not a state_dict"
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shape = sorted(
        k for k in set(expected) & set(found) if getattr(found[k], "shape", None) != getattr(expected[k], "shape", None)
    )
    example = (missing or unexpected or shape or ["?"])[0]
    return f"{len(missing)} missing keys, {len(unexpected)} unexpected, {len(shape)} of another shape, e.g. {example}"


def _build_trunk(meta: dict) -> nn.Module:
    """The randomly initialised trunk a backbone.json describes (ValueError saying what is wrong)."""
    if is_timm_arch(meta["arch"]):
        spec = meta.get("timm")
        if not isinstance(spec, dict) or not isinstance(spec.get("out_indices"), list):
            raise ValueError("a timm arch needs a 'timm' entry with 'out_indices', as train-ssl's export writes")
        return build_timm_backbone(timm_name(meta["arch"]), False, tuple(int(i) for i in spec["out_indices"]))
    return build_backbone(meta["arch"], bool(meta["small_stem"]))


def find_export(path: str | os.PathLike, option: str = "backbone") -> Path:
    """The export folder ``path`` stands for: a run folder (its ``export/``), an export folder, or a
    backbone.pt with its backbone.json beside it.

    FileNotFoundError (one line naming ``option``) otherwise: a bare backbone.pt (it does not say
    its arch, stem, image size or normalisation), a run that has no export yet (``train-ssl export
    RUN`` writes one from its latest checkpoint), or a path that is none of these.
    """
    path = Path(path)
    if path.is_file():
        if path.with_name("backbone.json").is_file():
            return path.parent
        raise FileNotFoundError(
            f"{option}: {path} has no backbone.json beside it, so its arch, stem, image size and "
            f"normalisation are unknown; give the export folder it came from (train-ssl export RUN writes one)"
        )
    if path.is_dir():
        for candidate in (path, path / "export"):
            if (candidate / "backbone.pt").is_file():
                return candidate
        if (path / "checkpoint.pt").is_file():
            raise FileNotFoundError(
                f"{option}: the run in {path} has no export yet; write one from its latest checkpoint "
                f"with: train-ssl export {path}"
            )
        raise FileNotFoundError(
            f"{option}: {path} is neither a run folder (with export/ or checkpoint.pt), an export folder "
            f"nor a backbone.pt"
        )
    raise FileNotFoundError(f"{option}: {path} does not exist")


def load_backbone(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Load an export: `path` is the export directory or its backbone.pt.

    Returns (trunk, meta): a torchvision ResNet with the small stem applied when meta
    says so, or the timm features_only model ``meta["timm"]`` describes; weights loaded
    strictly, in eval mode on CPU.
    """
    path = Path(path)
    pt = path / "backbone.pt" if path.is_dir() else path
    meta_path = pt.with_name("backbone.json")
    if not pt.is_file():
        raise FileNotFoundError(f"{pt}: no exported backbone here (expected backbone.pt)")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: missing; an export is backbone.pt + backbone.json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{meta_path}: not a backbone.json ({exc}); expected a JSON object with keys {list(META_KEYS)}"
        ) from None
    missing = [k for k in META_KEYS if k not in meta] if isinstance(meta, dict) else list(META_KEYS)
    if missing:
        raise ValueError(f"{meta_path}: missing keys {missing}; expected {list(META_KEYS)}")
    try:
        resnet = _build_trunk(meta)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"{meta_path}: arch {meta['arch']!r} is not a supported backbone ({exc})") from None
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)  # a foreign file cannot run code
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{pt}: cannot be read as a backbone state_dict ({first}); expected the backbone.pt of a train-ssl export"
        ) from None
    try:
        resnet.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError):
        raise ValueError(
            f"{pt}: does not hold {meta['arch']} weights as {meta_path.name} says "
            f"({_state_mismatch(resnet.state_dict(), state)}); export and backbone.json must come "
            f"from the same run"
        ) from None
    return resnet.eval(), meta


def load_encoder(path: str | os.PathLike) -> tuple[Encoder, dict]:
    """`load_backbone` with the trunk wrapped in an `Encoder` (levels, channels, strides), eval mode."""
    trunk, meta = load_backbone(path)
    return Encoder(trunk).eval(), meta


class NoHeadsError(ValueError):
    """The export holds no property decoder (its method trained none); the message says which method."""


def load_heads(path: str | os.PathLike, meta: Optional[dict] = None) -> tuple[PropertyDecoder, dict]:
    """The property decoder of an export (directory or its backbone.pt), eval mode, CPU.

    Returns (decoder, heads_meta) with heads_meta = ``backbone.json["heads"]``. Needs
    nothing but the export (not the run's config). Raises `NoHeadsError` naming the
    method when the export has no heads.
    """
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    if meta is None:
        meta = json.loads((directory / "backbone.json").read_text())
    heads = meta.get("heads")
    method = meta.get("method", "?")
    if heads is None:
        raise NoHeadsError(
            f"{directory}: made by method {method!r}, which has no property heads to predict with "
            f"(it trains no depth/normal/contour heads); train synthetic_contrast, or dsc with "
            f"method.synthetic.property_weight>0"
        )
    pt = directory / heads["file"]
    if not pt.is_file():
        raise NoHeadsError(f"{pt}: missing, but backbone.json of method {method!r} lists heads")
    decoder = PropertyDecoder(tuple(heads["in_channels"]), int(heads["width"]), heads["depth"])
    decoder.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True), strict=True)
    return decoder.eval(), heads
