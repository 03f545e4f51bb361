"""Batched tensor augmentation: random resized crop + horizontal flip for a whole batch at once.

One `affine_grid` + `grid_sample` call replaces N PIL crops, which is what makes in-memory
datasets fast on a CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_resized_crop_params(
    n: int,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop width, height (fractions of the image) and centres (in [-1, 1]) for N images.

    Area is uniform in `scale`, log aspect ratio uniform in `ratio` (as torchvision's
    RandomResizedCrop); sides are clipped to the image instead of retried.
    """
    area = torch.empty(n).uniform_(scale[0], scale[1], generator=generator)
    log_r = torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = log_r.exp()
    w = (area * aspect).sqrt().clamp(max=1.0)
    h = (area / aspect).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - h)
    return w, h, cx, cy


def random_resized_crop_flip(
    images: torch.Tensor,
    out_size: int,
    scale: tuple[float, float] = (0.2, 1.0),
    hflip: bool = True,
    generator: torch.Generator | None = None,
    offset: int = 0,
    total: int | None = None,
) -> torch.Tensor:
    """(N, C, H, W) float images -> (N, C, out, out) crops, bilinear, half of them flipped.

    With `total`, parameters are drawn for `total` images and rows `offset : offset + N` are
    used: one process's share of a global batch gets the views the whole batch would get.
    """
    n = images.shape[0]
    total = n if total is None else total
    w, h, cx, cy = random_resized_crop_params(total, scale, generator=generator)
    sign = torch.ones(total)
    if hflip:
        sign = torch.where(torch.rand(total, generator=generator) < 0.5, -1.0, 1.0)
    w, h, cx, cy, sign = (v[offset : offset + n] for v in (w, h, cx, cy, sign))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    theta = theta.to(images.device, images.dtype)
    grid = F.affine_grid(theta, [n, images.shape[1], out_size, out_size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def resize(images: torch.Tensor, out_size: int) -> torch.Tensor:
    """Resize float images (N, C, H, W) to a square size (identity when it already matches)."""
    if images.shape[-1] == out_size and images.shape[-2] == out_size:
        return images
    return F.interpolate(images, size=(out_size, out_size), mode="bilinear", antialias=True)
