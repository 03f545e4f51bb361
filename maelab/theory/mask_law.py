"""The law of maelab's masks over pixels, exactly: which pixels a mask removes, and how often.

maelab's masks (maelab.masking) remove ``R = L - int(L * (1 - ratio))`` patches chosen by
``argsort`` of a noise score. For the ``random`` strategy every patch is equally likely and
every set of R patches is; for ``block`` (and ``block_shifted``) whole units are removed
first, so when R is a whole number of units every set of R / (patches per unit) units is
equally likely. Either way the mask removes ``removed`` of ``num_atoms`` *atoms* (a patch, or a
unit of patches), uniformly at random, and every moment of the mask has a closed form:

* P(atom removed) = R / U, P(kept) = (U - R) / U;
* P(u removed, a kept) = R (U - R) / (U (U - 1)) for u != a;
* P(u removed, a kept, b kept) = that times (U - R - 1) / (U - 2) for distinct u, a, b;
* P(a kept, b kept) = (U - R) (U - R - 1) / (U (U - 1)) for a != b.

A removed count that splits a unit, the ``grid`` strategy and per-batch ratios have no such
law here: `mask_law` refuses them (one line naming the fix).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from maelab.config import MaskConfig
from maelab.masking import num_keep

LossOn = Literal["masked", "all"]


@dataclass(frozen=True)
class MaskLaw:
    """``removed`` of ``num_atoms`` equal-sized atoms removed uniformly at random.

    ``atom`` (D,) gives each pixel's atom (pixels in raster order); ``loss_on`` says which
    outputs the loss counts: the removed pixels (maelab's MAE) or every pixel.
    """

    atom: np.ndarray  # (D,) int
    num_atoms: int
    removed: int
    loss_on: LossOn = "masked"

    def __post_init__(self) -> None:
        if not 0 <= self.removed <= self.num_atoms:
            raise ValueError(f"removed={self.removed} of {self.num_atoms} atoms")
        if self.loss_on == "masked" and not 0 < self.removed < self.num_atoms:
            raise ValueError("a masked loss needs at least one removed and one kept atom")

    @property
    def num_pixels(self) -> int:
        return int(self.atom.shape[0])

    @property
    def p_removed(self) -> float:
        return self.removed / self.num_atoms

    @property
    def p_kept(self) -> float:
        return 1.0 - self.p_removed

    @property
    def p_kept_kept(self) -> float:
        """P(a kept, b kept), a != b."""
        u, r = self.num_atoms, self.removed
        return (u - r) * (u - r - 1) / (u * (u - 1)) if u > 1 else 0.0

    @property
    def p_removed_kept(self) -> float:
        """P(u removed, a kept), u != a."""
        u, r = self.num_atoms, self.removed
        return r * (u - r) / (u * (u - 1)) if u > 1 else 0.0

    @property
    def p_removed_kept_kept(self) -> float:
        """P(u removed, a kept, b kept), u, a, b distinct."""
        u, r = self.num_atoms, self.removed
        return self.p_removed_kept * (u - r - 1) / (u - 2) if u > 2 else 0.0

    def same_atom(self) -> np.ndarray:
        """(D, D) bool: pixels i and j lie in one atom."""
        return self.atom[:, None] == self.atom[None, :]

    def counted_visible(self) -> np.ndarray:
        """(D, D): P(output i counts in the loss and input j is visible)."""
        if self.loss_on == "all":
            return np.full((self.num_pixels,) * 2, self.p_kept)
        return np.where(self.same_atom(), 0.0, self.p_removed_kept)

    def num_masks(self) -> int:
        return math.comb(self.num_atoms, self.removed)

    def masks(self, max_masks: int, samples: int, seed: int = 0) -> tuple[np.ndarray, bool]:
        """Pixel masks (n, D) bool (True = removed) of the law, and whether they are all of them.

        Every mask, each equally likely, when there are at most ``max_masks``; else
        ``samples`` masks drawn from the law (a Monte Carlo average over them).
        """
        exact = self.num_masks() <= max_masks
        if exact:
            sets = np.array(
                list(itertools.combinations(range(self.num_atoms), self.removed)), dtype=np.int64
            ).reshape(-1, self.removed)
        else:
            rng = np.random.default_rng(seed)
            sets = np.argsort(rng.random((samples, self.num_atoms)), axis=1)[:, : self.removed]
        removed_atoms = np.zeros((sets.shape[0], self.num_atoms), dtype=bool)
        np.put_along_axis(removed_atoms, sets, True, axis=1)
        return removed_atoms[:, self.atom], exact


def patch_of_pixel(image_size: int, patch_size: int) -> np.ndarray:
    """(D,) raster index of the patch holding each pixel (pixels in raster order)."""
    rows, cols = np.meshgrid(np.arange(image_size), np.arange(image_size), indexing="ij")
    grid = image_size // patch_size
    return ((rows // patch_size) * grid + cols // patch_size).ravel()


def mask_law(
    mask: MaskConfig, image_size: int, patch_size: int, loss_on: LossOn = "masked"
) -> MaskLaw:
    """The exact law of a configured mask (see the module docstring); ValueError if none."""
    if mask.ratio_range is not None:
        raise ValueError("mask.ratio_range draws a ratio per batch: no fixed law; set mask.ratio")
    if image_size % patch_size:
        raise ValueError(f"patch size {patch_size} does not divide the image ({image_size} px)")
    grid = image_size // patch_size
    num_patches = grid * grid
    removed = num_patches - num_keep(num_patches, mask.ratio)
    patch = patch_of_pixel(image_size, patch_size)
    if mask.strategy == "random":
        return MaskLaw(patch, num_patches, removed, loss_on)
    if mask.strategy not in ("block", "block_shifted"):
        raise ValueError(f"mask.strategy={mask.strategy!r} has no exact law (random, block only)")
    unit = mask.unit or patch_size
    side = unit // patch_size  # patches per unit side
    if unit % patch_size or grid % side:
        raise ValueError(f"mask.unit={unit} must be a multiple of {patch_size} dividing the image")
    if removed % (side * side):
        raise ValueError(
            f"ratio {mask.ratio} removes {removed} patches, not a whole number of "
            f"{side * side}-patch units: pick a ratio that removes whole units"
        )
    rows, cols = np.divmod(patch, grid)
    if mask.strategy == "block_shifted":  # a patch takes the unit of the patch half a unit up-left
        half = side // 2
        rows, cols = (rows - half) % grid, (cols - half) % grid
    units_side = grid // side
    unit_of_pixel = (rows // side) * units_side + cols // side
    return MaskLaw(unit_of_pixel, units_side * units_side, removed // (side * side), loss_on)
