"""The training data pipeline: DataLoaders (uint8 reads) -> device -> batched augmentation.

`TrainingData(cfg, ...)` builds, per rank (reading only the shard ``fields`` the method
asks for, see `DataNeeds`, through the ``collection`` the trainer opened once):
- the view-pair stream: rendered scenes (`SceneDataset` over ``data.shards``, train
  split; scenes with more than two views give a fresh pair of them per draw) or, with
  ``data.photo_pairs``, photos (`PhotoFolder`), each with a
  `ResumableSampler` over its own scenes/photos (disjoint per rank); or, with
  ``data.stream``, scenes rendered on the fly by render worker processes
  (`synthssl.train.data.stream.SceneStream`, opened by the pre-flight checks), each scene
  once, at position ``start_step x`` the per-rank batch (or a checkpoint's ``stream_start``);
- the real-photo stream when the method needs it (domain adaptation, photo contrast):
  ``data.real_batch_size`` images per step, ``real_views`` crops of each photo.
`next_batch(step)` returns the augmented `ViewBatch` of that step (plus how many
corrupt photos were skipped). All randomness of a step comes from a generator
seeded by (seed, rank, step), so a resumed run sees identical batches.
"""

from __future__ import annotations

import hashlib
from typing import Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset

from synthssl.dataset.reader import ShardCollection
from synthssl.train.config import DataConfig, TrainingConfig
from synthssl.train.data.augment import augment_scenes, photo_pair_batch, real_images
from synthssl.train.data.batch import ViewBatch
from synthssl.train.data.photos import PhotoFolder
from synthssl.train.data.sampler import ResumableSampler
from synthssl.train.data.scenes import SceneDataset, scene_fields
from synthssl.train.data.stream import SceneStream
from synthssl.train.guards import ignore_stop_signals


def step_seed(seed: int, rank: int, step: int, stream: str = "") -> int:
    """A 63-bit seed from (seed, rank, step, stream), stable across platforms."""
    digest = hashlib.blake2b(f"{seed}/{rank}/{step}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _loader(
    dataset: Dataset, batch: int, sampler: ResumableSampler, workers: int, prefetch: int, pin: bool
) -> Iterator[dict]:
    kwargs = dict(num_workers=workers, pin_memory=pin, drop_last=True)
    if workers > 0:  # workers live through SLURM's SIGUSR1/SIGTERM: the main process checkpoints, then stops them
        kwargs.update(prefetch_factor=prefetch, persistent_workers=True, worker_init_fn=ignore_stop_signals)
    return iter(DataLoader(dataset, batch_size=batch, sampler=sampler, **kwargs))


def photos_per_rank(d: DataConfig, world: int, real_views: int) -> int:
    """Real photos each rank draws per step: ``data.real_batch_size`` (0 = ``data.batch_size``) images
    shared by the ranks, ``real_views`` crops of each photo; at least one."""
    return max(1, (d.real_batch_size or d.batch_size) // world // real_views)


class TrainingData:
    """Per-rank data streams; see the module docstring."""

    def __init__(
        self,
        cfg: TrainingConfig,
        *,
        needs_real: bool,
        real_views: int = 1,
        rank: int = 0,
        world: int = 1,
        device: torch.device = torch.device("cpu"),
        start_step: int = 0,
        fields: Optional[tuple[str, ...]] = None,
        collection: Optional[ShardCollection] = None,
        stream: Optional[SceneStream] = None,
        stream_start: Optional[int] = None,
    ):
        d = cfg.data
        self.cfg, self.rank, self.world, self.device = cfg, rank, world, device
        self.local_batch = d.batch_size // world
        self.real_views = real_views
        self.local_real = photos_per_rank(d, world, real_views)  # photos per step (each real_views crops)
        base = d.photo_base_size or 2 * d.image_size
        pin = device.type == "cuda"
        self.scenes: Optional[SceneDataset] = None
        self.pairs: Optional[PhotoFolder] = None
        self.stream: Optional[SceneStream] = None
        self._real_iter: Optional[Iterator[dict]] = None
        self._pairs_iter: Optional[Iterator[dict]] = None
        if d.stream is not None:
            self.stream = stream or SceneStream(
                d.stream,
                d.stream_set,
                workers=d.stream_workers,
                fields=[f for f in scene_fields(fields) if f != "rgb"],
                batch=self.local_batch,
                rank=rank,
                world=world,
                pair_seed=cfg.train.seed,
                pin=pin,
            )
            try:
                self.stream.start(start_step * self.local_batch if stream_start is None else stream_start)
                self._open_real(needs_real, real_views, base, start_step, pin)
            except BaseException:
                self.close()
                raise
            return
        if d.photo_pairs:
            self.pairs = PhotoFolder(d.photos, base, seed=cfg.train.seed, rank=rank, cache_mb=d.photo_cache_mb)
            pair_set: Dataset = self.pairs
        else:
            self.scenes = SceneDataset(
                d.shards,
                split="train" if d.val_fraction > 0 else None,
                val_fraction=d.val_fraction,
                fields=fields,
                collection=collection,
                pair_seed=cfg.train.seed,
            )
            pair_set = self.scenes
        sampler = ResumableSampler(
            len(pair_set), seed=cfg.train.seed, rank=rank, world=world, start=start_step * self.local_batch
        )
        self._pairs_iter = _loader(pair_set, self.local_batch, sampler, d.workers, d.prefetch_factor, pin)
        try:
            self._open_real(needs_real, real_views, base, start_step, pin)
        except BaseException:
            self.close()
            raise

    def _open_real(self, needs_real: bool, real_views: int, base: int, start_step: int, pin: bool) -> None:
        """The real-photo stream, when the method needs one."""
        cfg, d, rank, world = self.cfg, self.cfg.data, self.rank, self.world
        if needs_real:
            self.real = PhotoFolder(d.photos, base, seed=cfg.train.seed + 1, rank=rank, cache_mb=d.photo_cache_mb)
            real_sampler = ResumableSampler(
                len(self.real), seed=cfg.train.seed + 1, rank=rank, world=world, start=start_step * self.local_real
            )
            # Photos are decoded once per worker and then only sliced: a quarter of the workers suffices.
            real_workers = max(1, d.workers // 4) if d.workers > 0 else 0
            self._real_iter = _loader(self.real, self.local_real, real_sampler, real_workers, d.prefetch_factor, pin)

    def close(self) -> None:
        """Stop the loader worker processes now (idempotent; the streams cannot be read after).

        The workers ignore SIGTERM (`ignore_stop_signals`), so they must be shut down through their
        queues, as torch does when an iterator is freed: an iterator kept alive until interpreter
        exit (by a traceback, say) would otherwise leave multiprocessing's exit handler waiting for
        a worker that its SIGTERM cannot stop."""
        for it in (self._pairs_iter, self._real_iter):
            shutdown = getattr(it, "_shutdown_workers", None)  # multi-process iterators only
            if shutdown is not None:
                shutdown()
        if self.stream is not None:
            self.stream.close()  # the render workers, and the shared memory

    def next_raw(self) -> tuple[dict, Optional[dict]]:
        """The next collated CPU batches (uint8/float16/float32 arrays as tensors)."""
        pairs = self.stream.next_batch() if self.stream is not None else next(self._pairs_iter)
        return pairs, (next(self._real_iter) if self._real_iter is not None else None)

    def augment(self, raw: dict, raw_real: Optional[dict], step: int) -> tuple[ViewBatch, int]:
        """Move a raw batch to the device and augment it with step `step`'s randomness."""
        g = torch.Generator().manual_seed(step_seed(self.cfg.train.seed, self.rank, step, "augment"))
        size = self.cfg.data.image_size
        aug = self.cfg.augment
        skipped = int(raw["skipped"].sum()) if "skipped" in raw else 0
        if raw_real is not None:
            skipped += int(raw_real["skipped"].sum())
        raw = {k: v.to(self.device, non_blocking=True) for k, v in raw.items()}
        if self.pairs is not None:
            batch = photo_pair_batch(raw, aug, size, g)
        else:
            batch = augment_scenes(raw, aug, size, g)
        if raw_real is not None:
            raw_real = {k: v.to(self.device, non_blocking=True) for k, v in raw_real.items()}
            batch.real = real_images(raw_real, aug, size, g, self.real_views)
        return batch, skipped

    def next_batch(self, step: int) -> tuple[ViewBatch, int]:
        """The augmented batch of step `step` and the number of corrupt photos skipped for it."""
        raw, raw_real = self.next_raw()
        return self.augment(raw, raw_real, step)
