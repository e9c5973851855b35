"""Batched, on-device augmentation of view pairs and photos.

All random parameters are drawn on the CPU from an explicit ``torch.Generator`` (so a
run is reproducible and resumable on any device) and applied to whole batches on the
training device with one ``grid_sample`` per modality.

Geometry (applied consistently to rgb and every map of a view):
- Random resized crop: a box (x0, y0, x1, y1) in source pixel-edge coordinates
  (integer sides, as torchvision's RandomResizedCrop), resized to S x S.
  An output pixel centre u' samples source x = x0 + (u' + 0.5) * w / S - 0.5.
- Horizontal flip: u' -> S - 1 - u'.
- rgb: bilinear. depth, normal, contour, instance, category: nearest (values are
  never mixed across surfaces, so depth stays a true surface depth and labels stay
  labels).
- Intrinsics: K' = F @ A @ K with A = [[sx, 0, sx(0.5 - x0) - 0.5], [0, sy, sy(0.5 - y0)
  - 0.5], [0, 0, 1]], sx = S/w, sy = S/h, and F = [[-1, 0, S-1], [0, 1, 0], [0, 0, 1]]
  when flipped (so fx -> -fx, cx -> S-1-cx): projecting a camera point with K' lands
  exactly where the crop/flip moved its source pixel; cam_to_world is unchanged.
- Normals: unchanged by crop/resize (the camera does not rotate); x negated on flip.

Photometric (rgb only, per image, in this order): colour jitter with probability
``jitter_p`` (brightness, contrast, saturation, hue as a rotation of the YIQ chroma
plane), grayscale with probability ``grayscale_p``, Gaussian blur with probability
``blur_p`` (sigma range given at 224 px, scaled to S), then ImageNet normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from synthssl.train.config import AugmentConfig
from synthssl.train.data.batch import IMAGENET_MEAN, IMAGENET_STD, ViewBatch


@dataclass
class Crops:
    """Per-image crop parameters: boxes float32 [n,4] (x0,y0,x1,y1), flip bool [n]."""

    boxes: Tensor
    flip: Tensor


def sample_crops(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    flip_p: float,
    generator: torch.Generator,
    attempts: int = 10,
) -> Crops:
    """torchvision-style random resized crop boxes for `n` images of height x width.

    Up to `attempts` tries per image (vectorised); the first box that fits is kept,
    otherwise the largest central box with the ratio clamped to `ratio`.
    """
    area = float(height * width)
    u = torch.rand(n, attempts, 4, generator=generator, dtype=torch.float64)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[..., 1]
    aspect = torch.exp(log_r)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (h > 0) & (w <= width) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1, dtype=torch.long))
    rows = torch.arange(n)
    pick = first.clamp_min(0)
    w_sel, h_sel = w[rows, pick], h[rows, pick]
    # Fallback: central crop with the aspect clamped into the allowed range.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fh, fw = height, round(height * ratio[1])
    else:
        fw, fh = width, height
    w_sel = torch.where(first >= 0, w_sel, torch.full_like(w_sel, fw))
    h_sel = torch.where(first >= 0, h_sel, torch.full_like(h_sel, fh))
    x0 = torch.floor(u[rows, pick, 2] * (width - w_sel + 1)).clamp(max=width - w_sel)
    y0 = torch.floor(u[rows, pick, 3] * (height - h_sel + 1)).clamp(max=height - h_sel)
    x0 = torch.where(first >= 0, x0, torch.full_like(x0, (width - fw) // 2))
    y0 = torch.where(first >= 0, y0, torch.full_like(y0, (height - fh) // 2))
    boxes = torch.stack([x0, y0, x0 + w_sel, y0 + h_sel], 1).float()
    flip = torch.rand(n, generator=generator) < flip_p
    return Crops(boxes, flip)


def crop_theta(crops: Crops, height: int, width: int) -> Tensor:
    """affine_grid matrices [n,2,3] (align_corners=False) that crop, resize and flip."""
    x0, y0, x1, y1 = crops.boxes.double().unbind(1)
    w, h = x1 - x0, y1 - y0
    sign = torch.where(crops.flip, -1.0, 1.0).double()
    theta = torch.zeros(len(x0), 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = sign * w / width
    theta[:, 0, 2] = (2 * x0 + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * y0 + h) / height - 1
    return theta.float()


def crop_intrinsics(K: Tensor, crops: Crops, size: int) -> Tensor:
    """K [n,3,3] of the source views -> K' of the cropped, resized (S=size), flipped views."""
    x0, y0, x1, y1 = crops.boxes.to(K.device, torch.float64).unbind(1)
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    A = torch.zeros(len(x0), 3, 3, dtype=torch.float64, device=K.device)
    A[:, 0, 0], A[:, 0, 2] = sx, sx * (0.5 - x0) - 0.5
    A[:, 1, 1], A[:, 1, 2] = sy, sy * (0.5 - y0) - 0.5
    A[:, 2, 2] = 1.0
    flip = crops.flip.to(K.device, torch.float64)  # 1 where flipped (no boolean indexing: no device sync)
    Fm = torch.eye(3, dtype=torch.float64, device=K.device).repeat(len(x0), 1, 1)
    Fm[:, 0, 0] = 1.0 - 2.0 * flip
    Fm[:, 0, 2] = (size - 1.0) * flip
    return (Fm @ A @ K.double()).to(K.dtype)


def resample(images: Tensor, theta: Tensor, size: int, mode: str) -> Tensor:
    """Crop/resize/flip images [n,C,H,W] (float) to [n,C,size,size] with `mode`."""
    grid = F.affine_grid(
        theta.to(images.device, images.dtype), [images.shape[0], images.shape[1], size, size], align_corners=False
    )
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


_TO_YIQ = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
_FROM_YIQ = torch.linalg.inv(torch.tensor(_TO_YIQ, dtype=torch.float64)).tolist()  # computed once, on the CPU


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _gray(x: Tensor) -> Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def photometric(x: Tensor, cfg: AugmentConfig, g: torch.Generator) -> Tensor:
    """Colour jitter, grayscale and blur on rgb x [n,3,S,S] in [0,1]; returns [0,1] floats."""
    n, device = x.shape[0], x.device

    def col(v: Tensor) -> Tensor:
        return v.to(device, x.dtype).view(n, 1, 1, 1)

    jitter = col((torch.rand(n, generator=g) < cfg.jitter_p).float())
    b = col(_uniform(n, 1 - cfg.brightness, 1 + cfg.brightness, g))
    c = col(_uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, g))
    s = col(_uniform(n, 1 - cfg.saturation, 1 + cfg.saturation, g))
    hue = _uniform(n, -cfg.hue, cfg.hue, g) * 2 * math.pi
    y = (x * b).clamp(0, 1)
    mean = _gray(y).mean(dim=(2, 3), keepdim=True)
    y = ((y - mean) * c + mean).clamp(0, 1)
    gray = _gray(y)
    y = ((y - gray) * s + gray).clamp(0, 1)
    # Hue: rotate the chroma (I, Q) plane of YIQ by the hue angle.
    to_yiq = torch.tensor(_TO_YIQ, device=device, dtype=x.dtype)
    from_yiq = torch.tensor(_FROM_YIQ, device=device, dtype=x.dtype)
    cos, sin = torch.cos(hue).to(device, x.dtype), torch.sin(hue).to(device, x.dtype)
    rot = torch.zeros(n, 3, 3, device=device, dtype=x.dtype)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = from_yiq @ rot @ to_yiq  # [n,3,3]
    y = torch.einsum("nij,njhw->nihw", m, y).clamp(0, 1)
    x = jitter * y + (1 - jitter) * x
    to_gray = col((torch.rand(n, generator=g) < cfg.grayscale_p).float())
    x = to_gray * _gray(x).expand_as(x) + (1 - to_gray) * x
    return gaussian_blur(x, cfg, g)


def gaussian_blur(x: Tensor, cfg: AugmentConfig, g: torch.Generator) -> Tensor:
    """Separable Gaussian blur with per-image sigma (probability blur_p), batched as a grouped conv."""
    n, _, size, _ = x.shape
    scale = size / 224.0
    blur = torch.rand(n, generator=g) < cfg.blur_p
    sigma = _uniform(n, cfg.blur_sigma[0], cfg.blur_sigma[1], g) * scale
    radius = int(math.ceil(3 * cfg.blur_sigma[1] * scale))
    if radius < 1 or not bool(blur.any()):
        return x
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t[None] / sigma[:, None].double()) ** 2)
    k = k / k.sum(1, keepdim=True)
    delta = (t == 0).double().expand_as(k)
    k = torch.where(blur[:, None], k, delta).to(x.device, x.dtype)  # [n, 2r+1]
    weight = k.repeat_interleave(3, 0)  # [n*3, 2r+1]
    y = x.reshape(1, n * 3, size, size)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), weight[:, None, None, :], groups=n * 3)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), weight[:, None, :, None], groups=n * 3)
    return y.reshape(n, 3, size, size)


def normalise(x: Tensor) -> Tensor:
    """[n,3,H,W] in [0,1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def _rgb_to_float(rgb: Tensor) -> Tensor:
    """uint8 [n,H,W,3] -> float32 [n,3,H,W] in [0,1]."""
    return rgb.permute(0, 3, 1, 2).float().div_(255.0)


def augment_photos(
    rgb: Tensor, cfg: AugmentConfig, size: int, g: torch.Generator, views: int = 1
) -> tuple[Tensor, Crops]:
    """Photos uint8 [B,H0,W0,3] (device) -> ``views`` augmented crops each.

    Returns (rgb float [B,views,3,S,S] normalised, Crops over B*views images, view-major
    inside each sample).
    """
    b, h0, w0, _ = rgb.shape
    crops = sample_crops(b * views, h0, w0, tuple(cfg.crop_scale), tuple(cfg.crop_ratio), cfg.flip_p, g)
    src = _rgb_to_float(rgb).repeat_interleave(views, 0)
    out = resample(src, crop_theta(crops, h0, w0), size, "bilinear").clamp_(0, 1)
    out = normalise(photometric(out, cfg, g))
    return out.view(b, views, 3, size, size), crops


def augment_scenes(raw: dict[str, Tensor], cfg: AugmentConfig, size: int, g: torch.Generator) -> ViewBatch:
    """Collated scenes (see `synthssl.train.data.scenes`, tensors on the device) -> ViewBatch.

    Maps absent from `raw` (not read, see `DataNeeds.fields`) are None in the batch.
    """
    rgb = raw["rgb"]
    b, v, h0, w0, _ = rgb.shape
    n = b * v
    crops = sample_crops(n, h0, w0, tuple(cfg.crop_scale), tuple(cfg.crop_ratio), cfg.flip_p, g)
    theta = crop_theta(crops, h0, w0)
    image = resample(_rgb_to_float(rgb.reshape(n, h0, w0, 3)), theta, size, "bilinear").clamp_(0, 1)
    image = normalise(photometric(image, cfg, g)).view(b, v, 3, size, size)
    # All maps in one nearest-neighbour resample: [n, C, H0, W0] float32 (ids < 2^24 are exact).
    layout = [
        (k, c) for k, c in (("depth", 1), ("normal", 3), ("contour", 1), ("instance", 1), ("category", 1)) if k in raw
    ]
    out: dict[str, Optional[Tensor]] = {
        k: None for k in ("depth", "normal", "contour", "instance", "category", "valid", "intrinsics", "cam_to_world")
    }
    flip = crops.flip.to(rgb.device)
    if layout:
        parts = [
            raw[k].reshape(n, h0, w0, 3).permute(0, 3, 1, 2).float() if c == 3 else raw[k].reshape(n, 1, h0, w0).float()
            for k, c in layout
        ]
        maps = resample(torch.cat(parts, 1), theta, size, "nearest")
        offset = 0
        for k, c in layout:
            out[k] = maps[:, offset : offset + c]
            offset += c
        if out["normal"] is not None:
            normal = out["normal"]
            sign = torch.where(flip, -1.0, 1.0).to(normal.dtype).view(n, 1, 1, 1)
            out["normal"] = torch.cat([normal[:, :1] * sign, normal[:, 1:]], 1).view(b, v, 3, size, size)
        if out["depth"] is not None:
            out["valid"] = (out["depth"] > 0).view(b, v, size, size)
            out["depth"] = out["depth"].view(b, v, size, size)
        if out["contour"] is not None:
            out["contour"] = out["contour"].view(b, v, size, size)
        for k in ("instance", "category"):
            if out[k] is not None:
                out[k] = out[k].round().long().view(b, v, size, size)
    if "intrinsics" in raw:
        out["intrinsics"] = crop_intrinsics(raw["intrinsics"].reshape(n, 3, 3).float(), crops, size).view(b, v, 3, 3)
    if "cam_to_world" in raw:
        out["cam_to_world"] = raw["cam_to_world"].float()
    return ViewBatch(
        rgb=image,
        crop_boxes=crops.boxes.to(rgb.device).view(b, v, 4),
        flipped=flip.view(b, v),
        scene_id=raw["scene_id"].long(),
        **out,
    )


def photo_pair_batch(
    raw: dict[str, Tensor], cfg: AugmentConfig, size: int, g: torch.Generator, views: int = 2
) -> ViewBatch:
    """Collated photos (``rgb`` uint8 [B,S0,S0,3], ``photo_index``) -> ViewBatch of two crops each."""
    rgb, crops = augment_photos(raw["rgb"], cfg, size, g, views)
    b = rgb.shape[0]
    return ViewBatch(
        rgb=rgb,
        crop_boxes=crops.boxes.to(rgb.device).view(b, views, 4),
        flipped=crops.flip.to(rgb.device).view(b, views),
        scene_id=-1 - raw["photo_index"].long(),
    )


def real_images(
    raw: Optional[dict[str, Tensor]], cfg: AugmentConfig, size: int, g: torch.Generator, views: int = 1
) -> Optional[Tensor]:
    """Collated photos [P,...] -> ``views`` augmented crops each, float [P*views,3,S,S] normalised,
    sample-major (the crops of photo i are rows i*views ... i*views + views-1). None passes through."""
    if raw is None:
        return None
    rgb, _ = augment_photos(raw["rgb"], cfg, size, g, views)
    return rgb.flatten(0, 1)
