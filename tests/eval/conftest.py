"""Tiny fixtures for the evaluation tests: shards of toy scenes, a fake Fashion-MNIST
root, an exported backbone, a photo folder and a fast eval config."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from synthssl.dataset.contour import contour_from_instance
from synthssl.dataset.writer import ShardWriter
from synthssl.train.export import save_backbone
from synthssl.train.models.backbone import build_backbone

SIZE = 32
CATEGORIES = ["background", "floor", "wall", "box", "ball"]


def toy_scene(rng: np.random.Generator, views: int = 2, size: int = SIZE, max_objects: int = 3) -> dict:
    """A wall (top half, 4 m away), a floor (bottom half, depth falls towards the bottom)
    and up to ``max_objects`` flat boxes closer to the camera; colours follow category."""
    h = w = size
    rows = np.arange(h, dtype=np.float32)[:, None].repeat(w, 1)
    scene = {k: [] for k in ("rgb", "depth", "normal", "instance", "contour", "category")}
    n_obj = int(rng.integers(1, max_objects + 1))
    boxes = []
    for k in range(n_obj):
        y0, x0 = rng.integers(2, h - 12), rng.integers(2, w - 12)
        boxes.append((y0, x0, int(rng.integers(6, 11)), float(rng.uniform(1.0, 2.5)), 3 + int(rng.integers(0, 2))))
    for v in range(views):
        shift = v * 2
        depth = np.where(rows < h // 2, 4.0, 4.0 - 2.5 * (rows - h // 2) / h).astype(np.float32)
        normal = np.zeros((h, w, 3), np.float32)
        normal[: h // 2, :, 2] = -1.0
        normal[h // 2 :, :, 1] = -1.0
        instance = np.where(rows < h // 2, 2, 1).astype(np.uint16)
        category = instance.copy()
        for k, (y0, x0, s, d, cat) in enumerate(boxes):
            xs = slice(max(0, x0 - shift), max(0, x0 - shift) + s)
            depth[y0 : y0 + s, xs] = d
            normal[y0 : y0 + s, xs] = (0.0, 0.0, -1.0)
            instance[y0 : y0 + s, xs] = 3 + k
            category[y0 : y0 + s, xs] = cat
        palette = np.array([[0, 0, 0], [90, 140, 60], [200, 200, 210], [220, 40, 40], [40, 60, 220]], np.float32)
        shade = (1.5 / depth)[..., None]
        rgb = np.clip(palette[category] * np.clip(shade, 0.3, 1.2) + rng.normal(0, 4, (h, w, 3)), 0, 255)
        for key, val in (
            ("rgb", rgb.astype(np.uint8)),
            ("depth", depth),
            ("normal", normal.astype(np.float16)),
            ("instance", instance),
            ("contour", contour_from_instance(instance)),
            ("category", category),
        ):
            scene[key].append(val)
    out = {k: np.stack(v) for k, v in scene.items()}
    K = np.array([[size, 0, (size - 1) / 2], [0, size, (size - 1) / 2], [0, 0, 1]], np.float32)
    out["intrinsics"] = np.repeat(K[None], views, 0)
    out["cam_to_world"] = np.repeat(np.eye(4, dtype=np.float32)[None], views, 0)
    out.update(
        overlap=np.ones(views - 1, np.float32),
        object_count=np.uint16(n_obj),
        object_instance=np.zeros(max_objects, np.uint16),
        object_category=np.zeros(max_objects, np.uint16),
        object_pose=np.zeros((max_objects, 4, 4), np.float32),
        object_scale=np.zeros((max_objects, 3), np.float32),
        objects_json="[]",
    )
    return out


def write_toy_shards(directory: Path, scenes: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    attrs = {"seed": seed, "render_config": {}, "category_names": CATEGORIES, "first_scene": 0}
    with ShardWriter(
        directory / "shard-00000.h5", height=SIZE, width=SIZE, views=2, max_objects=3, attrs=attrs
    ) as writer:
        for i in range(scenes):
            scene = toy_scene(rng)
            scene["scene_id"] = np.int64(i)
            writer.append(scene)
    return directory


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_fake_fashion_mnist(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """10 classes; class c is a bright bar at row 2c + noise, so the task is easy."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 * c + 3 : 2 * c + 7, 4:24] = 250
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture(scope="session")
def eval_assets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("eval_assets")
    torch.manual_seed(123)
    resnet = build_backbone("resnet18", small_stem=False)
    save_backbone(
        resnet,
        base / "export",
        arch="resnet18",
        small_stem=False,
        image_size=SIZE,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        method="test",
        steps=7,
    )
    torch.manual_seed(7)
    torch.save(build_backbone("resnet18").state_dict(), base / "other.pt")
    write_toy_shards(base / "shards", scenes=20)
    write_fake_fashion_mnist(base / "fmnist")
    photos = base / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "photo.png"), np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8))
    run = base / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps({"step": s, "loss": 5.0 / (1 + s), "contrast": 4.0 / (1 + s), "online_knn_k20": 10.0 + s}) + "\n"
            for s in range(0, 100, 10)
        )
    )
    (base / "eval.yaml").write_text(
        "seed: 0\n"
        "image: {train_size: 120, test_size: 60, seeds: [0, 1], knn_k: [5, 20], batch_size: 64}\n"
        "dense: {train_scenes: 8, test_scenes: 4, steps: 30, batch_size: 8, contour_thresholds: 19}\n"
        f"report: {{scenes: 2, photos: 1, photo_dir: {str(photos)!r}, cell: 64, embedding_points: 60}}\n"
    )
    return {
        "base": base,
        "export": base / "export",
        "other": base / "other.pt",
        "shards": base / "shards",
        "fmnist": base / "fmnist",
        "run": run,
        "config": base / "eval.yaml",
        "photos": photos,
    }
