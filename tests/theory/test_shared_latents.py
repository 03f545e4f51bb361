"""Shared latents of hand-made masks on a 32 px world (patch 4, cell 8, region 16: 64 patches,
16 cells, 4 regions), checked against counts done by hand and against a brute-force
enumeration of (visible, masked) patch pairs and their lowest common ancestor."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from maelab.config import SyntheticConfig
from maelab.data.synthetic import synthetic_layout
from maelab.masking import MaskGeometry, mask_from_noise, mask_noise
from maelab.theory.shared_latents import mixed_groups, shared_latents

CFG = SyntheticConfig(image_size=32, cell_size=8, region_cells=2, version=2)
PATCH = 4
GRID = 8  # patches per side
LAYOUT = synthetic_layout(CFG, PATCH)


def _mask_of_pixels(rows: slice, cols: slice) -> torch.Tensor:
    """A (1, 64) mask removing the patches whose top-left pixel lies in rows x cols."""
    m = torch.zeros(GRID, GRID, dtype=torch.bool)
    m[rows.start // PATCH : rows.stop // PATCH, cols.start // PATCH : cols.stop // PATCH] = True
    return m.reshape(1, -1)


def _shared(mask: torch.Tensor):
    return shared_latents(mask, LAYOUT["patch_region"], LAYOUT["patch_cell"], 4, 16)


def test_three_whole_regions_masked_share_only_the_global_latent() -> None:
    # region-sized unit at ratio 0.75: keep the top-left region, remove the other three
    mask = ~_mask_of_pixels(slice(0, 16), slice(0, 16))
    out = _shared(mask)
    assert out.global_shared.tolist() == [True]
    assert not out.region_shared.any() and not out.cell_shared.any()
    assert out.fractions() == {"global": 1.0, "region_noise": 0.0, "cell_noise": 0.0}


def test_whole_cells_masked_share_region_noise_but_no_cell_noise() -> None:
    # remove the top-left cell only: region 0 is mixed, every cell is whole
    mask = _mask_of_pixels(slice(0, 8), slice(0, 8))
    out = _shared(mask)
    assert out.region_shared[0].tolist() == [True, False, False, False]
    assert not out.cell_shared.any()


def test_one_masked_patch_shares_its_cell_and_region() -> None:
    mask = torch.zeros(1, 64, dtype=torch.bool)
    mask[0, 9] = True  # patch (1, 1): pixels 4-7, cell (0, 0), region 0
    out = _shared(mask)
    assert out.region_shared[0].tolist() == [True, False, False, False]
    assert out.cell_shared[0].nonzero().flatten().tolist() == [0]
    assert out.fractions()["cell_noise"] == pytest.approx(1 / 16)


def test_a_straddling_region_sized_unit_mixes_all_four_regions() -> None:
    # keep the central 16 px square: a quarter of every region, whole cells
    mask = ~_mask_of_pixels(slice(8, 24), slice(8, 24))
    out = _shared(mask)
    assert out.region_shared.all() and not out.cell_shared.any()


def test_all_visible_or_all_masked_shares_nothing() -> None:
    for mask in (torch.zeros(1, 64, dtype=torch.bool), torch.ones(1, 64, dtype=torch.bool)):
        out = _shared(mask)
        assert not out.global_shared.any() and not out.region_shared.any()
        assert not out.cell_shared.any()


def _brute_force(mask: torch.Tensor) -> tuple[bool, set[int], set[int]]:
    """The lowest common ancestor of every (visible, masked) pair, collected per level."""
    region, cell = LAYOUT["patch_region"].tolist(), LAYOUT["patch_cell"].tolist()
    visible = [i for i in range(64) if not mask[i]]
    masked = [i for i in range(64) if mask[i]]
    top, regions, cells = False, set(), set()
    for v, m in itertools.product(visible, masked):
        if cell[v] == cell[m]:
            cells.add(cell[v])
        elif region[v] == region[m]:
            regions.add(region[v])
        else:
            top = True
    return top, regions, cells


@pytest.mark.parametrize("strategy,unit", [("random", 4), ("block", 8), ("block", 16)])
def test_matches_lowest_common_ancestors_of_sampled_masks(strategy: str, unit: int) -> None:
    g = torch.Generator().manual_seed(0)
    geom = MaskGeometry(grid=GRID, patch_size=PATCH)
    mask = mask_from_noise(mask_noise(strategy, 8, geom, 0.75, unit, g), 0.75).removed
    out = _shared(mask)
    for i in range(8):
        top, regions, cells = _brute_force(mask[i])
        # with >= 2 children per node, a node with a visible and a masked patch below it is
        # the lowest common ancestor of some pair (a mixed child pairs with a whole sibling)
        assert set(out.cell_shared[i].nonzero().flatten().tolist()) == cells
        assert set(out.region_shared[i].nonzero().flatten().tolist()) == regions
        assert bool(out.global_shared[i]) == top


def test_expected_fractions_per_unit_at_ratio_075() -> None:
    """Averaged over sampled masks: the region unit shares no region or cell noise, the
    straddling unit every region's, the cell unit regions but no cells, the patch unit both."""
    g = torch.Generator().manual_seed(1)
    geom = MaskGeometry(grid=GRID, patch_size=PATCH)
    got = {}
    for name, strategy, unit in (
        ("patch", "random", 4),
        ("cell", "block", 8),
        ("region", "block", 16),
        ("straddle", "block_shifted", 16),
    ):
        mask = mask_from_noise(mask_noise(strategy, 2000, geom, 0.75, unit, g), 0.75)
        got[name] = _shared(mask.removed).fractions()
    assert got["region"] == {"global": 1.0, "region_noise": 0.0, "cell_noise": 0.0}
    assert got["straddle"] == {"global": 1.0, "region_noise": 1.0, "cell_noise": 0.0}
    # cell unit: 4 of 16 cells visible; a region is mixed unless its 4 cells share one fate
    # P(region whole) = [C(12,4) + C(12,0)] / C(16,4) = 496 / 1820
    assert got["cell"]["cell_noise"] == 0.0
    assert got["cell"]["region_noise"] == pytest.approx(1 - 496 / 1820, abs=0.02)
    # patch unit: 16 of 64 patches visible; a cell (4 patches) stays whole with probability
    # [C(60,16) + C(60,12)] / C(64,16)
    whole = (_comb(60, 16) + _comb(60, 12)) / _comb(64, 16)
    assert got["patch"]["cell_noise"] == pytest.approx(1 - whole, abs=0.02)
    assert got["patch"]["region_noise"] > 0.99


def _comb(n: int, k: int) -> float:
    return float(math.comb(n, k))


def test_mixed_groups_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="disagree"):
        mixed_groups(torch.zeros(2, 5, dtype=torch.bool), torch.zeros(4, dtype=torch.long), 1)
