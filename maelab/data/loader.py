"""Batches for training and evaluation, deterministic per (seed, epoch, step) and rank.

Every random choice of a batch (order, crop, flip) comes from generators seeded by the epoch
and the step, so a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Subset

from maelab.data.augment import random_resized_crop_flip, resize
from maelab.data.base import ImageSet, Split, StreamingSet


@dataclass(frozen=True)
class Batching:
    batch_size: int  # per process
    seed: int = 0
    rank: int = 0
    world: int = 1
    crop_scale: tuple[float, float] = (0.2, 1.0)
    hflip: bool = True
    augment: bool = True
    num_workers: int = 0


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs and platforms)."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 or [0,1] float (N, C, H, W) -> standardised float32."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def unit_scale(images: torch.Tensor) -> torch.Tensor:
    """Stored images as float: uint8 grey levels to [0, 1]; float images (Gaussian worlds, in
    the units of their covariance) as they are."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


def steps_per_epoch(n: int, b: Batching) -> int:
    """Full global batches per epoch (the remainder is dropped, as in the official code)."""
    return max(1, n // (b.batch_size * b.world))


def epoch_order(n: int, b: Batching, epoch: int) -> torch.Tensor:
    """This rank's sample indices for an epoch, (steps, batch_size)."""
    g = torch.Generator().manual_seed(derive_seed(b.seed, epoch, 17))
    perm = torch.randperm(n, generator=g)
    steps = steps_per_epoch(n, b)
    if n < b.batch_size * b.world:  # tiny dataset: repeat it to fill one batch
        perm = perm.repeat(b.batch_size * b.world // n + 1)
    perm = perm[: steps * b.batch_size * b.world].view(steps, b.world, b.batch_size)
    return perm[:, b.rank, :]


def train_batches(
    split: Split,
    b: Batching,
    epoch: int,
    image_size: int,
    device: torch.device,
    start_step: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Augmented, normalised training batches of this rank, from `start_step` of the epoch."""
    if isinstance(split, ImageSet):
        order = epoch_order(len(split), b, epoch)
        for step in range(start_step, order.shape[0]):
            idx = order[step]
            x = unit_scale(split.images[idx].to(device, non_blocking=True))
            if b.augment:
                # views drawn for the global batch (no rank in the seed; the 0 keeps one-process
                # views as they were), so N processes see what one process would
                g = torch.Generator().manual_seed(derive_seed(b.seed, epoch, step, 0, 29))
                x = random_resized_crop_flip(
                    x,
                    image_size,
                    b.crop_scale,
                    b.hflip,
                    generator=g,
                    offset=b.rank * b.batch_size,
                    total=b.batch_size * b.world,
                )
            else:
                x = resize(x, image_size)
            yield normalize(x, split.mean, split.std), split.labels[idx].to(device)
        return
    yield from _stream_batches(split, b, epoch, image_size, device, start_step)


def _stream_batches(
    split: StreamingSet,
    b: Batching,
    epoch: int,
    image_size: int,
    device: torch.device,
    start_step: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    ds = split.train_dataset
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)
    order = epoch_order(len(ds), b, epoch)[start_step:].reshape(-1)  # type: ignore[arg-type]
    loader = DataLoader(
        Subset(ds, order.tolist()),
        batch_size=b.batch_size,
        shuffle=False,
        num_workers=b.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    for x, y in loader:
        x = resize(x.to(device, non_blocking=True).float().div_(255.0), image_size)
        yield normalize(x, split.mean, split.std), y.to(device)


def eval_batches(
    split: Split, batch_size: int, image_size: int, device: torch.device, num_workers: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Un-augmented, normalised batches in dataset order (for features and probes)."""
    if isinstance(split, ImageSet):
        for i in range(0, len(split), batch_size):
            x = unit_scale(split.images[i : i + batch_size].to(device))
            yield (
                normalize(resize(x, image_size), split.mean, split.std),
                split.labels[i : i + batch_size].to(device),
            )
        return
    loader = DataLoader(split.eval_dataset, batch_size=batch_size, num_workers=num_workers)
    for x, y in loader:
        x = resize(x.to(device).float().div_(255.0), image_size)
        yield normalize(x, split.mean, split.std), y.to(device)
