"""`ViewBatch`: the batch every method receives (a shared contract; keep stable).

A ViewBatch holds tensors already on the training device, *after* the batched
on-device augmentation (`synthssl.train.data.augment`). Shapes use
B = number of scenes (or photos) in the batch, V = views per sample (always 2),
H x W = training resolution.

Conventions
-----------
- ``rgb``: float [B,V,3,H,W], normalised with ImageNet mean/std
  (`IMAGENET_MEAN`, `IMAGENET_STD`, applied after colour augmentation).
- Rendered data only (None for photo pairs):
  ``depth`` float32 [B,V,H,W] metric z-depth in metres, 0 = no surface / invalid;
  ``normal`` float [B,V,3,H,W] unit normals in the (flipped, see below) camera frame
  (OpenCV: x right, y down, z forward), 0 where invalid; a horizontal flip negates x;
  ``contour`` float [B,V,H,W] in {0,1}; ``instance``/``category`` long [B,V,H,W]
  (ids as in the shard format: 0 background, 1 floor, 2 wall, objects >= 3);
  ``valid`` bool [B,V,H,W] = pixel has a surface (depth > 0) and lies inside the
  source image; ``intrinsics`` float32 [B,V,3,3] updated exactly for crop, resize and
  flip. A flip is folded into K (fx -> -fx, cx -> W-1-cx) so that projecting a
  camera-frame point with K lands on the flipped pixel while ``cam_to_world``
  [B,V,4,4] is unchanged; `synthssl.dataset.geometry.reproject` stays exact.
  (Normals are the exception: they are stored in the mirrored frame, x negated,
  so that predicted normals look like normals of the flipped image.)
- Always: ``crop_boxes`` float32 [B,V,4] = (x0, y0, x1, y1) of each view's crop in
  the original image's pixel coordinates (pixel-edge convention: the full image is
  (0, 0, W0, H0)), before resize; ``flipped`` bool [B,V].
- ``real``: float [Br,3,H,W] unlabeled real photos (normalised like rgb) for domain
  adaptation or photo contrast, or None; with ``DataNeeds.real_views`` = k, k crops of each
  photo, sample-major (rows i*k ... i*k + k-1 are photo i).
- ``scene_id``: long [B] each scene's id within its render (several renders may share ids: the pair
  (render id, scene id) is unique); photo pairs: -1 - photo index.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

import torch
from torch import Tensor

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

GEOMETRY_FIELDS: tuple[str, ...] = (
    "depth",
    "normal",
    "contour",
    "instance",
    "category",
    "valid",
    "intrinsics",
    "cam_to_world",
)


@dataclass
class ViewBatch:
    """A batch of view pairs on the training device (see module docstring for conventions)."""

    rgb: Tensor
    crop_boxes: Tensor
    flipped: Tensor
    scene_id: Tensor
    depth: Optional[Tensor] = None
    normal: Optional[Tensor] = None
    contour: Optional[Tensor] = None
    instance: Optional[Tensor] = None
    category: Optional[Tensor] = None
    valid: Optional[Tensor] = None
    intrinsics: Optional[Tensor] = None
    cam_to_world: Optional[Tensor] = None
    real: Optional[Tensor] = None

    @property
    def batch_size(self) -> int:
        """B, the number of samples (each with V views)."""
        return int(self.rgb.shape[0])

    @property
    def views(self) -> int:
        """V, views per sample (2)."""
        return int(self.rgb.shape[1])

    @property
    def has_geometry(self) -> bool:
        """True for rendered data (depth/normal/... present), False for photo pairs."""
        return self.depth is not None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "ViewBatch":
        """Copy every tensor field to `device`."""
        moved = {
            f.name: (
                getattr(self, f.name).to(device, non_blocking=non_blocking)
                if getattr(self, f.name) is not None
                else None
            )
            for f in fields(self)
        }
        return ViewBatch(**moved)

    def slice(self, start: int, stop: int) -> "ViewBatch":
        """Samples [start:stop] of every per-sample field (`real` is kept whole)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value if (value is None or f.name == "real") else value[start:stop]
        return ViewBatch(**out)

    def replace(self, **changes) -> "ViewBatch":
        """A copy with some fields replaced."""
        return replace(self, **changes)
