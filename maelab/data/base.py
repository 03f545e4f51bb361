"""Dataset containers and the dataset registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset


@dataclass
class ImageSet:
    """An in-memory image dataset: uint8 images plus labels and optional ground-truth latents.

    Gaussian worlds store float32 pixels in the units of their known covariance instead, with
    mean 0 and std 1 so that normalising leaves them as they are.
    """

    images: torch.Tensor  # (N, C, H, W) uint8, or float32 (maelab.data.gaussian)
    labels: torch.Tensor  # (N,) int64
    num_classes: int
    mean: tuple[float, ...]  # per channel, in [0, 1] units
    std: tuple[float, ...]
    latents: dict[str, torch.Tensor] = field(default_factory=dict)  # each (N, ...)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]


@dataclass
class StreamingSet:
    """A dataset too large for memory: `train_dataset` applies crop + flip itself.

    Both datasets return `(uint8 tensor (C, H, W), int label)`.
    """

    train_dataset: Dataset
    eval_dataset: Dataset  # same images, centre-resized, no augmentation
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: int
    image_size: int

    def __len__(self) -> int:
        return len(self.train_dataset)  # type: ignore[arg-type]


Split = ImageSet | StreamingSet


@dataclass
class Splits:
    train: Split
    test: Split


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: how to build it and whether it needs a download."""

    name: str
    description: str
    offline: bool
    build: Callable[[Any], Splits]  # DataConfig -> Splits
    num_train: int | None = None
    num_test: int | None = None
    augment: bool = True  # default for random resized crop + flip during pretraining


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    DATASETS[entry.name] = entry
    return entry


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), in [0, 1] units.

    Accumulated in float64 over chunks, so a large set never gets a full float copy.
    """
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for chunk in images.split(4096):
        x = chunk.to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.pow(2).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    var = (total_sq - count * mean.pow(2)) / max(count - 1, 1)
    std = var.clamp_min(0).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())
