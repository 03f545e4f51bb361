"""What the probes feed a model: image subsets, normalised image tensors, patch geometry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from maelab.data.base import ImageSet, Split
from maelab.data.folder import IMAGENET_MEAN, IMAGENET_STD
from maelab.data.loader import normalize
from maelab.models.mae import MAEArch


def in_memory(split: Split, limit: int = 4096) -> ImageSet:
    """A split as an ImageSet: streamed folders are read (un-augmented, first `limit` images,
    at the split's image size) so the probes can index them."""
    if isinstance(split, ImageSet):
        return split
    return _read_streamed(split, range(min(len(split), limit)))


def _read_streamed(split: Split, index: Iterable[int]) -> ImageSet:
    """The images at `index` of a streamed split, read un-augmented, as an in-memory set."""
    pairs = [split.eval_dataset[int(i)] for i in index]
    return ImageSet(
        images=torch.stack([x for x, _ in pairs]),  # (N, C, H, W) uint8
        labels=torch.tensor([int(y) for _, y in pairs]),
        num_classes=split.num_classes,
        mean=split.mean,
        std=split.std,
    )


def spread_sample(split: Split, count: int | None) -> ImageSet:
    """`count` images (all when None or more) at evenly spaced indices of a split, in memory.

    Folder splits are stored class by class, so the first `count` images could all be one
    class; evenly spaced ones cover every class in proportion. Streamed splits are read
    un-augmented at the split's image size.
    """
    n = len(split) if isinstance(split, ImageSet) else len(split.eval_dataset)  # type: ignore[arg-type]
    count = n if count is None else min(n, count)
    if count < 1:
        raise ValueError(f"no images to probe (split of {n}, asked for {count})")
    index = torch.linspace(0, n - 1, count).round().long()
    if isinstance(split, ImageSet):
        return ImageSet(
            images=split.images[index],
            labels=split.labels[index],
            num_classes=split.num_classes,
            mean=split.mean,
            std=split.std,
            latents={k: v[index] for k, v in split.latents.items()},
        )
    return _read_streamed(split, index.tolist())


def fit_to_model(images: ImageSet, arch: MAEArch, imagenet_stats: bool = False) -> ImageSet:
    """Images as a model takes them: resized to its image size, grey replicated to its 3
    channels, and (`imagenet_stats`, for official ViTs) standardised with ImageNet statistics.

    A grey set replicated to 3 channels keeps its own statistics per channel otherwise. Colour
    images for a grey model are refused (ValueError): which grey the model expects is unknown.
    """
    x, mean, std = images.images, tuple(images.mean), tuple(images.std)
    if images.channels != arch.in_chans:
        if images.channels != 1 or arch.in_chans != 3:
            raise ValueError(
                f"the images have {images.channels} channel(s) and the model takes "
                f"{arch.in_chans}; give data with {arch.in_chans} channel(s)"
            )
        x = x.expand(-1, 3, -1, -1)  # (N, 3, H, W) grey in every channel
        mean, std = mean * 3, std * 3
    if x.shape[-1] != arch.img_size or x.shape[-2] != arch.img_size:
        size = arch.img_size
        small = size < x.shape[-1]
        y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=small)  # fmt: skip
        x = y.round_().clamp_(0, 255).to(torch.uint8)
    if imagenet_stats and arch.in_chans == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    return ImageSet(
        images=x.contiguous(),
        labels=images.labels,
        num_classes=images.num_classes,
        mean=mean,
        std=std,
        latents=images.latents,
    )


def take(images: ImageSet, count: int | None, start: int = 0) -> ImageSet:
    """Images ``start .. start + count`` of a set (all from ``start`` when ``count`` is None),
    with their labels and latents; mean / std are kept so normalisation does not change."""
    stop = len(images) if count is None else min(len(images), start + count)
    if stop <= start:
        raise ValueError(f"no images in [{start}, {stop}) of a set of {len(images)}")
    return ImageSet(
        images=images.images[start:stop],
        labels=images.labels[start:stop],
        num_classes=images.num_classes,
        mean=images.mean,
        std=images.std,
        latents={k: v[start:stop] for k, v in images.latents.items()},
    )


def holdout_split(images: ImageSet, fit_fraction: float = 0.5) -> tuple[ImageSet, ImageSet]:
    """First ``fit_fraction`` of the images to fit a probe, the rest held out.

    Synthetic and shuffled sets are i.i.d. in storage order, so a prefix split is a random one.
    """
    if not 0.0 < fit_fraction < 1.0:
        raise ValueError(f"fit_fraction={fit_fraction} must be in (0, 1)")
    cut = int(round(len(images) * fit_fraction))
    if cut < 2 or len(images) - cut < 2:
        raise ValueError(f"{len(images)} images are too few to split into fit and held-out parts")
    return take(images, cut), take(images, None, start=cut)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def normalised(images: ImageSet, device: torch.device | str = "cpu") -> torch.Tensor:
    """All images as the model sees them: float32 (N, C, H, W), standardised per channel."""
    return normalize(images.images.to(device), images.mean, images.std)


def unit_interval(images: ImageSet) -> torch.Tensor:
    """All images as float32 (N, C, H, W) in [0, 1] (the pixels themselves, no standardisation)."""
    return images.images.float().div(255.0)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no gradients inside; the model's previous mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def grid_coords(grid: int) -> torch.Tensor:
    """(row, col) of each patch in raster order: (L, 2) float64 with L = grid * grid."""
    idx = torch.arange(grid, dtype=torch.float64)
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    return torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=1)


def grid_distances(grid: int) -> torch.Tensor:
    """Euclidean distance between patch positions in patch units: (L, L) float64."""
    xy = grid_coords(grid)
    return torch.cdist(xy, xy)


def unit_patches(image_size: int, unit_px: int, patch_size: int) -> list[list[int]]:
    """For each square unit of ``unit_px`` pixels (raster order), the patches that overlap it.

    A unit larger than a patch covers several patches; a unit smaller than a patch lies in one.
    """
    if image_size % unit_px or image_size % patch_size:
        raise ValueError(
            f"unit {unit_px} px and patch {patch_size} px must both divide the image ({image_size} px)"
        )
    units, grid = image_size // unit_px, image_size // patch_size
    out = []
    for ur in range(units):
        for uc in range(units):
            r0, r1 = ur * unit_px // patch_size, ((ur + 1) * unit_px - 1) // patch_size
            c0, c1 = uc * unit_px // patch_size, ((uc + 1) * unit_px - 1) // patch_size
            out.append([r * grid + c for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)])
    return out


def ratio_for_keep(num_patches: int, keep: int) -> float:
    """A mask ratio whose official rule ``int(L * (1 - ratio))`` keeps exactly ``keep`` patches."""
    if not 0 <= keep <= num_patches:
        raise ValueError(f"cannot keep {keep} of {num_patches} patches")
    return 1.0 - (keep + 0.5) / num_patches
