"""The exact law of maelab's masks, checked against masks drawn by maelab.masking itself."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from maelab.config import MaskConfig
from maelab.masking import MaskGeometry, mask_from_noise, mask_noise_for
from maelab.theory.mask_law import MaskLaw, mask_law, patch_of_pixel


def drawn_pixel_masks(mask: MaskConfig, size: int, patch: int, n: int) -> np.ndarray:
    """(n, D) bool pixel masks (True = removed) from maelab's own masking."""
    grid = size // patch
    noise = mask_noise_for(mask, n, MaskGeometry(grid, patch), torch.Generator().manual_seed(0))
    removed = mask_from_noise(noise, mask.ratio).removed.numpy()  # (n, L)
    return removed[:, patch_of_pixel(size, patch)]


CASES = [
    (MaskConfig(ratio=0.75), 8, 2),
    (MaskConfig(ratio=0.25), 8, 1),
    (MaskConfig(ratio=0.6), 8, 2),
    (MaskConfig(strategy="block", ratio=0.75, unit=4), 8, 2),
    (MaskConfig(strategy="block", ratio=0.5, unit=4), 16, 2),
    (MaskConfig(strategy="block_shifted", ratio=0.75, unit=8), 16, 2),
]


@pytest.mark.parametrize("mask,size,patch", CASES)
def test_every_drawn_mask_removes_whole_atoms_in_the_right_count(
    mask: MaskConfig, size: int, patch: int
) -> None:
    law = mask_law(mask, size, patch)
    drawn = drawn_pixel_masks(mask, size, patch, 200)
    for m in drawn:
        per_atom = [set(m[law.atom == a]) for a in range(law.num_atoms)]
        assert all(len(s) == 1 for s in per_atom)  # an atom is removed whole or not at all
        assert sum(s == {True} for s in per_atom) == law.removed


@pytest.mark.parametrize("mask,size,patch", CASES)
def test_moments_match_maelabs_masks(mask: MaskConfig, size: int, patch: int) -> None:
    """P(i removed, j kept) and P(i removed, j kept, l kept) against 20,000 drawn masks."""
    law = mask_law(mask, size, patch)
    drawn = drawn_pixel_masks(mask, size, patch, 20_000).astype(np.float64)
    kept = 1.0 - drawn
    assert np.allclose(drawn.mean(0), law.p_removed, atol=0.015)
    pair = drawn.T @ kept / len(drawn)
    assert np.allclose(pair, law.counted_visible(), atol=0.015)
    # triples: one removed atom, two kept ones (distinct), and two pixels of one kept atom
    members = [np.flatnonzero(law.atom == a) for a in range(law.num_atoms)]
    if law.num_atoms >= 3:
        i, j, k = members[0][0], members[1][0], members[2][0]
        got = (drawn[:, i] * kept[:, j] * kept[:, k]).mean()
        assert got == pytest.approx(law.p_removed_kept_kept, abs=0.015)
    if len(members[1]) > 1:
        j, k = members[1][:2]
        got = (drawn[:, members[0][0]] * kept[:, j] * kept[:, k]).mean()
        assert got == pytest.approx(law.p_removed_kept, abs=0.015)


def test_fixed_count_pair_probability_is_k_minus_1_over_l_minus_1() -> None:
    """For fixed-count masks P(b kept | a kept) = (K - 1) / (L - 1), not K / L."""
    law = mask_law(MaskConfig(ratio=0.75), 8, 2)  # L = 16, K = 4
    assert law.p_kept_kept / law.p_kept == pytest.approx(3 / 15)


def test_enumerated_masks_are_the_law() -> None:
    law = mask_law(MaskConfig(ratio=0.75), 8, 2)
    masks, exact = law.masks(max_masks=10_000, samples=10)
    assert exact and masks.shape == (1820, 64)
    assert len({m.tobytes() for m in masks}) == 1820
    assert np.allclose(masks.mean(0), 0.75)
    sampled, exact = law.masks(max_masks=100, samples=50)
    assert not exact and sampled.shape == (50, 64)
    assert (sampled.sum(1) == 48).all()


def test_block_shifted_atoms_straddle_the_aligned_ones() -> None:
    aligned = mask_law(MaskConfig(strategy="block", ratio=0.75, unit=8), 16, 2)
    shifted = mask_law(MaskConfig(strategy="block_shifted", ratio=0.75, unit=8), 16, 2)
    for a in range(shifted.num_atoms):
        under = set(aligned.atom[shifted.atom == a])
        assert len(under) == 4  # each shifted unit covers part of four aligned ones


@pytest.mark.parametrize(
    "mask,why",
    [
        (MaskConfig(strategy="grid", ratio=0.75), "no exact law"),
        (MaskConfig(ratio=0.5, ratio_range=(0.4, 0.6)), "per batch"),
        (MaskConfig(strategy="block", ratio=0.6, unit=4), "whole number"),
    ],
)
def test_masks_without_an_exact_law_are_refused(mask: MaskConfig, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        mask_law(mask, 16, 2)


def test_probabilities_are_consistent() -> None:
    for u, r in itertools.product(range(3, 9), range(1, 8)):
        if r >= u:
            continue
        law = MaskLaw(np.repeat(np.arange(u), 2), u, r)
        # P(u removed, a kept) = P(u removed) P(a kept | u removed)
        assert law.p_removed_kept == pytest.approx(r / u * (u - r) / (u - 1))
        triple = r / u * (u - r) / (u - 1) * (u - r - 1) / (u - 2)
        assert law.p_removed_kept_kept == pytest.approx(triple)
