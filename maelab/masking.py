"""Mask strategies. Each returns a noise score (N, L); the model keeps the lowest-scored patches.

Keeping the official `argsort(noise)` mechanism for every strategy means that the number of
removed patches is always exactly `L - int(L * (1 - ratio))` and that passing a fixed `noise`
makes any mask reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from maelab.config import MaskConfig


@dataclass(frozen=True)
class MaskGeometry:
    grid: int  # patches per side
    patch_size: int

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid


NoiseFn = Callable[
    [int, MaskGeometry, float, int | None, torch.Generator | None, torch.device], torch.Tensor
]
MASK_STRATEGIES: dict[str, NoiseFn] = {}


def register_mask(name: str) -> Callable[[NoiseFn], NoiseFn]:
    def wrap(fn: NoiseFn) -> NoiseFn:
        MASK_STRATEGIES[name] = fn
        return fn

    return wrap


def num_keep(num_patches: int, ratio: float) -> int:
    """Visible patches kept by the official rule `int(L * (1 - ratio))`."""
    return int(num_patches * (1 - ratio))


@register_mask("random")
def random_noise(
    n: int,
    geom: MaskGeometry,
    ratio: float,
    unit: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Uniform noise: every patch equally likely to be removed (He et al. 2022)."""
    return torch.rand(n, geom.num_patches, generator=generator, device=device)


@register_mask("block")
def block_noise(
    n: int,
    geom: MaskGeometry,
    ratio: float,
    unit: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Whole `unit x unit`-pixel squares are removed together (Kong et al. 2023 mask unit).

    Units are ranked at random; within a unit patches get a fractional offset, so whole units are
    removed first and, only when the removed count is not a multiple of the unit's patches, one
    unit is removed in part to keep the count exact.
    """
    unit = unit or geom.patch_size
    if unit % geom.patch_size:
        raise ValueError(
            f"mask unit {unit} px must be a multiple of the patch size {geom.patch_size}"
        )
    k = unit // geom.patch_size  # patches per unit side
    if geom.grid % k:
        raise ValueError(
            f"mask unit {unit} px must divide the image ({geom.grid * geom.patch_size} px)"
        )
    units_side = geom.grid // k
    unit_noise = torch.rand(n, units_side * units_side, generator=generator, device=device)
    unit_rank = unit_noise.argsort(dim=1).argsort(dim=1).float()  # (N, U) integer ranks
    unit_rank = unit_rank.view(n, units_side, 1, units_side, 1).expand(
        n, units_side, k, units_side, k
    )
    within = torch.rand(n, units_side, k, units_side, k, generator=generator, device=device) * 0.5
    return (unit_rank + within).reshape(n, geom.num_patches)  # raster order of patches


@register_mask("block_shifted")
def block_shifted_noise(
    n: int,
    geom: MaskGeometry,
    ratio: float,
    unit: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """`block` units moved by half a unit down and right (wrapping around the image).

    The control for aligned units: a unit the size of a synthetic region then straddles four
    regions instead of covering one, with the same number and shape of units.
    """
    noise = block_noise(n, geom, ratio, unit, generator, device)
    half = (unit or geom.patch_size) // geom.patch_size // 2
    grid = noise.view(n, geom.grid, geom.grid).roll(shifts=(half, half), dims=(1, 2))
    return grid.reshape(n, geom.num_patches)


@register_mask("grid")
def grid_noise(
    n: int,
    geom: MaskGeometry,
    ratio: float,
    unit: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A regular lattice: keep one patch per `s x s` cell (s ~ 1/sqrt(1 - ratio)), random offset."""
    s = max(1, round(1.0 / math.sqrt(max(1e-6, 1.0 - ratio))))
    offset = torch.randint(0, s * s, (n, 1), generator=generator, device=device)
    idx = torch.arange(geom.grid, device=device)
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    phase = ((rows % s) * s + (cols % s)).reshape(1, -1)  # (1, L) lattice class of each patch
    klass = (phase - offset) % (s * s)  # class 0 is the kept lattice
    tie = torch.rand(n, geom.num_patches, generator=generator, device=device) * 0.5
    return klass.float() + tie


def mask_noise(
    strategy: str,
    n: int,
    geom: MaskGeometry,
    ratio: float,
    unit: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Noise (N, L) for the named strategy; pass it to `MaskedAutoencoder(..., noise=)`."""
    if strategy not in MASK_STRATEGIES:
        raise ValueError(
            f"unknown mask strategy '{strategy}' (valid: {', '.join(MASK_STRATEGIES)})"
        )
    return MASK_STRATEGIES[strategy](n, geom, ratio, unit, generator, device)


def mask_noise_for(
    mask: MaskConfig,
    n: int,
    geom: MaskGeometry,
    generator: torch.Generator | None = None,
    ratio: float | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Noise (N, L) for a configured mask; `ratio` replaces `mask.ratio` (a drawn per-batch ratio)."""
    ratio = mask.ratio if ratio is None else ratio
    return mask_noise(mask.strategy, n, geom, ratio, mask.unit, generator, device)


def mask_from_noise(
    noise: torch.Tensor, ratio: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Official argsort masking. Returns ids_keep (N, K), mask (N, L) with 0 keep / 1 removed,
    ids_restore (N, L)."""
    n, num_patches = noise.shape
    len_keep = num_keep(num_patches, ratio)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    mask = torch.ones(n, num_patches, device=noise.device)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return ids_keep, mask, ids_restore
