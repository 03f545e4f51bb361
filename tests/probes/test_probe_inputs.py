"""Probe inputs: patch geometry against the synthetic layout and the model, subsets, mask ratios."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from maelab.config import SyntheticConfig
from maelab.data.base import ImageSet
from maelab.data.synthetic import synthetic_layout
from maelab.masking import num_keep
from maelab.models import MaskedAutoencoder
from maelab.models.mae import patchify
from maelab.probes.inputs import (
    eval_mode,
    grid_distances,
    holdout_split,
    ratio_for_keep,
    take,
    unit_patches,
)


@pytest.mark.parametrize("patch", [2, 4])
def test_unit_patches_agree_with_synthetic_layout(patch: int) -> None:
    cfg = SyntheticConfig()
    layout = synthetic_layout(cfg, patch)
    for unit_px, key in (
        (cfg.cell_size * cfg.region_cells, "patch_region"),
        (cfg.cell_size, "patch_cell"),
    ):
        groups = unit_patches(cfg.image_size, unit_px, patch)
        owner = torch.empty(len(layout[key]), dtype=torch.long)
        for u, patches in enumerate(groups):
            owner[patches] = u
        assert torch.equal(owner, layout[key])


def test_unit_smaller_than_patch_lies_in_one_patch() -> None:
    groups = unit_patches(16, 4, 8)  # 4x4 cells, 2x2 patches
    assert groups[0] == [0] and groups[3] == [1] and groups[15] == [3]


def test_patchify_at_another_patch_size_by_hand() -> None:
    # the probes patchify at sizes other than the model's: patch (r, c) holds pixels
    # [r*p:(r+1)*p, c*p:(c+1)*p] in (row, col, channel) order
    x = torch.randn(2, 3, 8, 8)
    p = 2
    out = patchify(x, p)
    assert out.shape == (2, 16, p * p * 3)
    for r in range(4):
        for c in range(4):
            block = x[:, :, r * p : (r + 1) * p, c * p : (c + 1) * p]  # (N, C, p, p)
            assert torch.equal(out[:, r * 4 + c], block.permute(0, 2, 3, 1).reshape(2, -1))
    with pytest.raises(ValueError, match="does not divide"):
        patchify(x, 3)


def test_ratio_for_keep_round_trips() -> None:
    for total in (16, 49, 196):
        for keep in range(total + 1):
            assert num_keep(total, ratio_for_keep(total, keep)) == keep


def test_take_and_holdout_split(images: ImageSet) -> None:
    a, b = holdout_split(take(images, 10))
    assert len(a) == 5 and len(b) == 5
    assert torch.equal(b.latents["global"], images.latents["global"][5:10])
    assert torch.equal(b.images, images.images[5:10])


def test_grid_distances() -> None:
    d = grid_distances(3)
    assert d[0, 1] == 1 and d[0, 4] == pytest.approx(2**0.5) and d[0, 8] == pytest.approx(8**0.5)


def test_eval_mode_restores_training(make_model: Callable[..., MaskedAutoencoder]) -> None:
    model = make_model().train()
    with eval_mode(model):
        assert not model.training and not torch.is_grad_enabled()
    assert model.training
