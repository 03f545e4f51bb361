"""Mask strategies and the mask itself. Each strategy returns a noise score (N, L); the mask
keeps the lowest-scored patches.

Keeping the official `argsort(noise)` mechanism for every strategy means that the number of
removed patches is always exactly `L - int(L * (1 - ratio))` and that passing a fixed `noise`
makes any mask reproducible. A `Mask` is made once from noise (`mask_from_noise`, `draw_mask`)
and passed as a value: the model, the probes and the readouts all read the same kept patches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class Mask:
    """Which patches of each image a mask keeps, and the settings it was drawn with.

    `ids_keep` is the order in which the encoder sees the visible patches; `ids_restore` puts
    the encoder's order (visible first, then removed) back into raster order.
    """

    ids_keep: torch.Tensor  # (N, K) visible patches, smallest noise first
    ids_restore: torch.Tensor  # (N, L) rank of each raster patch in the shuffled order
    removed: torch.Tensor  # (N, L) bool in raster order: True = removed (the official 1)
    ratio: float
    strategy: str | None = None  # None: made from bare noise
    unit: int | None = None

    @property
    def visible(self) -> torch.Tensor:
        """(N, L) bool, True = kept."""
        return ~self.removed

    @property
    def num_keep(self) -> int:
        return self.ids_keep.shape[1]

    @property
    def ids_removed(self) -> torch.Tensor:
        """(N, L - K) removed patches in the order the noise ranked them."""
        return self.ids_restore.argsort(dim=1)[:, self.num_keep :]

    def to(self, device: torch.device | str) -> Mask:
        return replace(
            self,
            ids_keep=self.ids_keep.to(device),
            ids_restore=self.ids_restore.to(device),
            removed=self.removed.to(device),
        )

    def rows(self, index: slice | torch.Tensor) -> Mask:
        """The masks of some images: a slice or an index tensor over N."""
        return replace(
            self,
            ids_keep=self.ids_keep[index],
            ids_restore=self.ids_restore[index],
            removed=self.removed[index],
        )

    def keep(self, x: torch.Tensor) -> torch.Tensor:
        """The visible tokens of `x` (N, L, D) in the encoder's order: (N, K, D)."""
        index = self.ids_keep.to(x.device).unsqueeze(-1).expand(-1, -1, x.shape[-1])
        return torch.gather(x, 1, index)

    def scatter(self, kept: torch.Tensor) -> torch.Tensor:
        """Visible tokens (N, K, D) in the encoder's order back at their raster positions:
        (N, L, D), zero where a patch is removed (the inverse of `keep`)."""
        n, length = self.removed.shape
        out = kept.new_zeros(n, length, kept.shape[-1])
        index = self.ids_keep.to(kept.device).unsqueeze(-1).expand(-1, -1, kept.shape[-1])
        return out.scatter_(1, index, kept)


def mask_from_noise(
    noise: torch.Tensor, ratio: float, strategy: str | None = None, unit: int | None = None
) -> Mask:
    """Official argsort masking: the `int(L * (1 - ratio))` patches of smallest noise are kept.
    `strategy` and `unit` record what drew the noise."""
    len_keep = num_keep(noise.shape[1], ratio)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    return Mask(
        ids_keep=ids_shuffle[:, :len_keep],
        ids_restore=ids_restore,
        removed=ids_restore >= len_keep,
        ratio=ratio,
        strategy=strategy,
        unit=unit,
    )


def draw_mask(
    mask: MaskConfig,
    n: int,
    geom: MaskGeometry,
    generator: torch.Generator | None = None,
    ratio: float | None = None,
    device: torch.device | str = "cpu",
) -> Mask:
    """A configured mask for `n` images (noise drawn as `mask_noise_for` draws it); `ratio`
    replaces `mask.ratio` (a drawn per-batch ratio)."""
    ratio = mask.ratio if ratio is None else ratio
    noise = mask_noise_for(mask, n, geom, generator, ratio, device)
    return mask_from_noise(noise, ratio, mask.strategy, mask.unit)


def batch_mask(
    n: int,
    num_patches: int,
    ratio: float,
    noise: torch.Tensor | None = None,
    mask: Mask | None = None,
    device: torch.device | str = "cpu",
) -> Mask:
    """The mask of a batch of `n`: `mask` as given, else the official argsort of `noise`
    (uniform noise drawn here when None) at `ratio`."""
    if mask is not None:
        if noise is not None:
            raise ValueError("give the mask as noise or as a Mask, not both")
        return mask.to(device)
    if noise is None:
        noise = torch.rand(n, num_patches, device=device)
    return mask_from_noise(noise.to(device), ratio)
