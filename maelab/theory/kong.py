"""Kong et al. in the linear-Gaussian hierarchy, exactly: how much of each latent the optimal
linear code carries into the removed pixels, by mask unit.

Kong's qualitative prediction for a hierarchy z_g -> z_r -> z_c -> pixels: units that hide a
whole region leave its own noise e_r unshared between the visible and the hidden part, so the
code should hold less e_r under region units than under patch units (and than under units of
the same size that straddle regions); cell units likewise hold less e_c than patch units. In a
linear-Gaussian world the optimum of the linear MAE is exact (maelab.theory.gaussian), so the
shares are exact too, and the prediction can be mapped over pixel noise, noise scales and the
code width k: where it holds, by how much, and where it reverses (docs/theory.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from maelab.config import GaussianConfig, MaskConfig
from maelab.data.gaussian import CELL_NOISE, REGION_NOISE, gaussian_world
from maelab.theory.gaussian import latent_shares, linear_optimum
from maelab.theory.mask_law import MaskLaw, mask_law

# the units Kong's contrast compares; e_r is read under the first three, e_c under the last two
REGION, PATCH, STRADDLED, CELL = "region", "patch", "straddled", "cell"
REGION_UNITS = (REGION, PATCH, STRADDLED)
CELL_UNITS = (CELL, PATCH)


def unit_masks(world: GaussianConfig, patch_size: int, ratio: float) -> dict[str, MaskConfig]:
    """The mask of each unit on the world's layout: whole regions, single patches, regions
    moved by half a region (straddling four), whole cells."""
    region_px = world.cell_size * world.region_cells
    return {
        REGION: MaskConfig(strategy="block", ratio=ratio, unit=region_px),
        PATCH: MaskConfig(strategy="random", ratio=ratio),
        STRADDLED: MaskConfig(strategy="block_shifted", ratio=ratio, unit=region_px),
        CELL: MaskConfig(strategy="block", ratio=ratio, unit=world.cell_size),
    }


def unit_laws(world: GaussianConfig, patch_size: int, ratio: float) -> dict[str, MaskLaw]:
    return {
        unit: mask_law(mask, world.image_size, patch_size)
        for unit, mask in unit_masks(world, patch_size, ratio).items()
    }


@dataclass(frozen=True)
class KongPoint:
    """The optimal code's e_r and e_c shares under each unit, for one world and code width."""

    pixel_noise: float
    region_noise_std: float
    cell_noise_std: float
    code_dim: int
    region_noise: dict[str, float]  # unit -> e_r share (all regions together)
    cell_noise: dict[str, float]  # unit -> e_c share (all cells together)

    @property
    def effect(self) -> float:
        """Kong's contrast: e_r share under patch units minus under region units (> 0: holds)."""
        return self.region_noise[PATCH] - self.region_noise[REGION]

    @property
    def holds(self) -> bool:
        """Region units keep the least e_r (below patch and straddled units)."""
        er = self.region_noise
        return er[REGION] < min(er[PATCH], er[STRADDLED])

    @property
    def cell_holds(self) -> bool | None:
        """Cell units keep less e_c than patch units (None: cell units not solved)."""
        if CELL not in self.cell_noise:
            return None
        return self.cell_noise[CELL] < self.cell_noise[PATCH]


def exact_shares(
    world: GaussianConfig, patch_size: int, ratio: float, code_dim: int | None,
    units: tuple[str, ...] = (REGION, PATCH, STRADDLED, CELL), starts: int = 2,
) -> dict[str, dict[str, float]]:  # fmt: skip
    """unit -> {level: share} of the exact optimum at code width ``code_dim`` (the best of
    ``starts`` solver starts)."""
    gw = gaussian_world(world)
    laws = unit_laws(world, patch_size, ratio)
    out = {}
    for unit in units:
        opt = linear_optimum(gw.covariance, laws[unit], code_dim, starts=starts)
        shares = latent_shares(opt.weights, gw, laws[unit])
        out[unit] = {level: float(v.sum()) for level, v in shares.items()}
    return out


def kong_point(
    world: GaussianConfig, patch_size: int, ratio: float, code_dim: int, with_cells: bool = True,
    starts: int = 2,
) -> KongPoint:  # fmt: skip
    units = REGION_UNITS + ((CELL,) if with_cells else ())
    shares = exact_shares(world, patch_size, ratio, code_dim, units, starts)
    return KongPoint(
        world.pixel_noise, world.region_noise_std, world.cell_noise_std, code_dim,
        {u: shares[u][REGION_NOISE] for u in REGION_UNITS},
        {u: shares[u][CELL_NOISE] for u in CELL_UNITS if u in shares},
    )  # fmt: skip


def kong_map(
    base: GaussianConfig,
    pixel_noises: tuple[float, ...],
    noise_scales: tuple[tuple[float, float], ...],
    code_dims: tuple[int, ...],
    patch_size: int = 2,
    ratio: float = 0.75,
    with_cells: bool = False,
    starts: int = 1,
) -> list[KongPoint]:
    """Kong's contrast over pixel noise x (s_r, s_c) noise scales x code width, exactly (one
    solver start per point by default: the map's cost; the rows use two)."""
    points = []
    for noise, (s_r, s_c), k in itertools.product(pixel_noises, noise_scales, code_dims):
        world = base.model_copy(
            update={"pixel_noise": noise, "region_noise_std": s_r, "cell_noise_std": s_c}
        )
        points.append(kong_point(world, patch_size, ratio, k, with_cells, starts))
    return points
