"""Mask strategies: shapes, exact counts, whole mask units, determinism, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from maelab.config import MaskConfig
from maelab.masking import (
    MASK_STRATEGIES,
    MaskGeometry,
    draw_mask,
    mask_from_noise,
    mask_noise,
    mask_noise_for,
    num_keep,
)
from maelab.models.mae import MaskedAutoencoder

RATIOS = [0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9]


def removed(num_patches: int, ratio: float) -> int:
    return num_patches - int(num_patches * (1 - ratio))


def mask_of(
    strategy: str,
    geom: MaskGeometry,
    ratio: float,
    unit: int | None = None,
    n: int = 8,
    seed: int = 0,
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return mask_from_noise(
        mask_noise(strategy, n, geom, ratio, unit, generator=g), ratio
    ).removed.float()


# ---------------------------------------------------------------- mask_from_noise
def test_mask_from_noise_shapes_and_semantics() -> None:
    noise = torch.tensor([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.4, 0.6]])
    m = mask_from_noise(noise, 0.5)
    assert m.ids_keep.tolist() == [[1, 3], [0, 2]]  # smallest noise kept, ascending
    assert m.removed.int().tolist() == [[1, 0, 1, 0], [0, 1, 0, 1]]  # 0 keep, 1 removed
    assert m.ids_restore.tolist() == [[3, 0, 2, 1], [0, 3, 1, 2]]
    assert m.ids_removed.tolist() == [[2, 0], [3, 1]]  # removed, smallest noise first
    assert (m.ratio, m.strategy, m.unit, m.num_keep) == (0.5, None, None, 2)


@settings(max_examples=60, deadline=None)
@given(side=st.integers(1, 16), ratio=st.floats(0.0, 1.0), n=st.integers(1, 3))
def test_mask_from_noise_exact_count(side: int, ratio: float, n: int) -> None:
    num_patches = side * side
    m = mask_from_noise(torch.rand(n, num_patches), ratio)
    ids_keep, mask, ids_restore = m.ids_keep, m.removed.float(), m.ids_restore
    k = int(num_patches * (1 - ratio))
    assert num_keep(num_patches, ratio) == k
    assert ids_keep.shape == (n, k)
    assert (mask.sum(dim=1) == num_patches - k).all()
    assert torch.equal(mask, (ids_restore >= k).float())
    assert torch.equal(mask.gather(1, ids_keep), torch.zeros(n, k))


# ---------------------------------------------------------------- every strategy
@pytest.mark.parametrize("strategy", sorted(MASK_STRATEGIES))
@pytest.mark.parametrize("ratio", RATIOS)
def test_shapes_and_exact_counts(strategy: str, ratio: float) -> None:
    for geom in (MaskGeometry(grid=8, patch_size=4), MaskGeometry(grid=14, patch_size=16)):
        noise = mask_noise(strategy, 5, geom, ratio)
        assert noise.shape == (5, geom.num_patches)
        assert noise.dtype == torch.float32
        mask = mask_from_noise(noise, ratio).removed
        assert mask.sum(dim=1).tolist() == [removed(geom.num_patches, ratio)] * 5


@pytest.mark.parametrize("strategy", sorted(MASK_STRATEGIES))
def test_generator_determinism(strategy: str) -> None:
    geom = MaskGeometry(grid=8, patch_size=4)
    unit = 8 if strategy == "block" else None
    a = mask_noise(strategy, 4, geom, 0.75, unit, generator=torch.Generator().manual_seed(3))
    b = mask_noise(strategy, 4, geom, 0.75, unit, generator=torch.Generator().manual_seed(3))
    c = mask_noise(strategy, 4, geom, 0.75, unit, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(mask_from_noise(a, 0.75).removed, mask_from_noise(c, 0.75).removed)


def test_unknown_strategy_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="random"):
        mask_noise("checkerboard", 1, MaskGeometry(4, 4), 0.5)


def test_random_masks_every_patch_equally_often() -> None:
    geom = MaskGeometry(grid=4, patch_size=4)
    rate = mask_of("random", geom, 0.75, n=4000).mean(dim=0)
    assert torch.allclose(rate, torch.full((16,), 0.75), atol=0.04)


# ---------------------------------------------------------------- block
@pytest.mark.parametrize(
    "grid,patch,unit,ratio",
    [
        (8, 4, 8, 0.25), (8, 4, 8, 0.5), (8, 4, 8, 0.75),  # 2x2-patch units
        (8, 4, 16, 0.75), (8, 4, 16, 0.5),  # 4x4-patch units
        (14, 16, 112, 0.75), (8, 4, 4, 0.75),  # unit == patch: plain random
    ],
)  # fmt: skip
def test_block_mask_is_union_of_whole_units(grid: int, patch: int, unit: int, ratio: float) -> None:
    k = unit // patch
    units = (grid // k) ** 2
    n_removed = removed(grid * grid, ratio)
    assert n_removed % (k * k) == 0, "case must remove a whole number of units"
    mask = mask_of("block", MaskGeometry(grid, patch), ratio, unit)
    per_unit = mask.reshape(-1, grid // k, k, grid // k, k).permute(0, 1, 3, 2, 4)
    per_unit = per_unit.reshape(mask.shape[0], units, k * k)  # (N, units, patches per unit)
    assert ((per_unit.sum(-1) == 0) | (per_unit.sum(-1) == k * k)).all()
    assert (per_unit.sum(-1) == k * k).sum(dim=1).tolist() == [n_removed // (k * k)] * mask.shape[0]


def test_block_mask_with_remainder_has_one_partial_unit() -> None:
    grid, k = 8, 2
    ratio = 0.6  # removes 64 - 25 = 39 patches: 9 whole units + 3 patches of a tenth
    mask = mask_of("block", MaskGeometry(grid, 4), ratio, unit=8)
    per_unit = mask.reshape(-1, 4, k, 4, k).permute(0, 1, 3, 2, 4).reshape(mask.shape[0], 16, 4)
    counts = per_unit.sum(-1)
    assert ((counts == 4).sum(dim=1) == 9).all()
    assert ((counts > 0) & (counts < 4)).sum(dim=1).tolist() == [1] * mask.shape[0]
    assert (counts.sum(dim=1) == 39).all()


def test_block_units_chosen_uniformly() -> None:
    mask = mask_of("block", MaskGeometry(4, 4), 0.5, unit=8, n=4000)
    assert torch.allclose(mask.mean(dim=0), torch.full((16,), 0.5), atol=0.04)


def test_block_default_unit_is_the_patch() -> None:
    geom = MaskGeometry(8, 4)
    assert mask_noise("block", 2, geom, 0.75).shape == (2, 64)


@pytest.mark.parametrize(
    "unit,message",
    [(6, "multiple of the patch"), (10, "multiple of the patch"), (24, "divide the image")],
)
def test_block_unit_errors(unit: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mask_noise("block", 1, MaskGeometry(grid=8, patch_size=4), 0.75, unit)


# ---------------------------------------------------------------- grid
@pytest.mark.parametrize("grid_size", [8, 14])
def test_grid_mask_at_075_keeps_a_lattice(grid_size: int) -> None:
    mask = mask_of("grid", MaskGeometry(grid_size, 4), 0.75, n=16)
    for m in mask:
        rows, cols = (m.reshape(grid_size, grid_size) == 0).nonzero(as_tuple=True)
        assert len(rows) == int(grid_size * grid_size * 0.25)
        assert len(set((rows % 2).tolist())) == 1 and len(set((cols % 2).tolist())) == 1


def test_grid_offsets_vary_between_samples() -> None:
    mask = mask_of("grid", MaskGeometry(8, 4), 0.75, n=64)
    assert len({tuple(m.tolist()) for m in mask}) == 4  # the four lattice phases


def test_mask_noise_for_takes_the_whole_mask_config():
    geom = MaskGeometry(grid=8, patch_size=4)

    def seeded() -> torch.Generator:
        return torch.Generator().manual_seed(5)

    # strategy, ratio and unit all come from the config (block noise depends on the unit)
    block = MaskConfig(strategy="block", ratio=0.5, unit=8)
    got = mask_noise_for(block, 3, geom, seeded())
    assert torch.equal(got, mask_noise("block", 3, geom, 0.5, 8, seeded()))
    assert not torch.equal(got, mask_noise("block", 3, geom, 0.5, None, seeded()))
    # `ratio` replaces the configured one (a per-batch drawn ratio); grid noise depends on it
    grid = MaskConfig(strategy="grid", ratio=0.5)
    got = mask_noise_for(grid, 2, geom, seeded(), ratio=0.9)
    assert torch.equal(got, mask_noise("grid", 2, geom, 0.9, None, seeded()))
    assert not torch.equal(got, mask_noise("grid", 2, geom, 0.5, None, seeded()))


# ---------------------------------------------------------------- Mask, the value
@pytest.mark.parametrize(("strategy", "unit"), [("random", None), ("block", 8), ("grid", None)])
def test_drawn_mask_is_the_models_mask(strategy: str, unit: int | None) -> None:
    """A Mask drawn from a config equals what the model makes of the same noise (ids_keep,
    ids_restore, the grid) and records the ratio, strategy and unit it came from."""
    geom = MaskGeometry(grid=4, patch_size=4)
    cfg = MaskConfig(strategy=strategy, ratio=0.75, unit=unit)
    mask = draw_mask(cfg, 3, geom, torch.Generator().manual_seed(5))
    noise = mask_noise_for(cfg, 3, geom, torch.Generator().manual_seed(5))
    assert (mask.ratio, mask.strategy, mask.unit) == (0.75, strategy, unit)
    model = MaskedAutoencoder(img_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2,
                              decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)  # fmt: skip
    x = torch.randn(3, 16, 32)
    kept, removed, ids_restore = model.random_masking(x, 0.75, noise)
    assert torch.equal(mask.ids_restore, ids_restore)
    assert torch.equal(mask.removed, removed.bool())
    assert torch.equal(mask.keep(x), kept)
    imgs = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        by_noise = model(imgs, 0.75, noise)
        by_mask = model(imgs, mask=mask)
    for a, b in zip(by_noise, by_mask, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="not both"):
        model(imgs, noise=noise, mask=mask)


def test_mask_keep_and_scatter_are_inverse_and_rows_select_images() -> None:
    mask = mask_from_noise(torch.rand(4, 9, generator=torch.Generator().manual_seed(0)), 2 / 3)
    x = torch.randn(4, 9, 5)
    kept = mask.keep(x)  # (4, 3, 5)
    back = mask.scatter(kept)
    assert kept.shape == (4, 3, 5) and (back[mask.removed] == 0).all()
    torch.testing.assert_close(back[mask.visible], x[mask.visible])
    sub = mask.rows(slice(1, 3))
    assert torch.equal(sub.ids_keep, mask.ids_keep[1:3]) and sub.ratio == mask.ratio
    same = mask.rows(torch.zeros(3, dtype=torch.long))  # image 0's mask for three images
    assert torch.equal(same.removed, mask.removed[:1].expand(3, -1))
