"""What every method's config is: its ``name`` and the data it needs (torch-free).

A method's ``Config`` dataclass derives from `MethodConfig`. Its `MethodConfig.data_needs`
says, from the options alone, what data the configured method requires, so the trainer
checks the data against it and opens the data once, before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class DataNeeds:
    """What data a configured method requires.

    geometry: needs rendered maps/cameras (so it cannot train on photo pairs);
    real: needs ``batch.real`` photos (``data.photos``); real_off: the overrides that switch
    off every term using them (named in the error when ``data.photos`` is unset);
    two_crops: its two views must be two crops of one image (``data.photo_pairs``), not
    two rendered cameras;
    real_views: crops of each real photo in ``batch.real`` (2: pairs, for a contrast term on
    the photos); the real batch stays ``data.real_batch_size`` images, so it holds
    ``real_batch_size / real_views`` photos;
    real_min: real images per rank that its terms need (2 for a statistic over the photos);
    fields: the shard view fields to read (``rgb`` is always read), e.g.
    ("depth", "normal", "contour"); None = all of them. ViewBatch fields that are not
    read are None (``valid`` needs ``depth``). Reading fewer fields makes the loader
    faster (each field is one HDF5 read per scene).
    """

    geometry: bool = False
    real: bool = False
    real_off: tuple[str, ...] = ()
    two_crops: bool = False
    real_views: int = 1
    real_min: int = 1
    fields: Optional[tuple[str, ...]] = None


@dataclass
class MethodConfig:
    """The ``method:`` section: ``name`` picks the method, the other keys are its options."""

    name: str = ""
    """the method (train/methods/registry.py)."""

    def data_needs(self) -> DataNeeds:
        """What the method as configured needs; default: rgb view pairs only (runs on photo pairs too)."""
        return DataNeeds()
