"""Cao Q5, information-controlled: the ridge reference against sklearn, and the known answer
that a world without regional sharing removes the near advantage."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from maelab import stats
from maelab.config import SyntheticConfig
from maelab.data.base import ImageSet
from maelab.data.synthetic import generate_synthetic
from maelab.models import MaskedAutoencoder
from maelab.probes.information_knockout import (
    Q5_MARGIN,
    compare_knockouts,
    fit_moments,
    q5_experiment,
    ridge_predict,
)

SHARED = SyntheticConfig(version=2, image_size=16, cell_size=4, region_cells=2, tied=True)
NO_REGIONS = SHARED.model_copy(update={"region_cells": 1})  # every patch its own region


def world(cfg: SyntheticConfig, n: int, seed: int) -> ImageSet:
    return generate_synthetic(n, cfg, seed=seed)


def test_ridge_predict_matches_sklearn() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 4, 3, generator=g, dtype=torch.float64)  # (N, L, D)
    y = x[:, [1]] * 0.5 + 0.1 * torch.randn(200, 1, 3, generator=g, dtype=torch.float64) + 2.0
    moments = fit_moments(x, y)
    visible = torch.tensor([0, 1, 3])
    penalty = 0.1
    got = ridge_predict(moments, visible, 0, penalty, x)
    design = x[:, visible].reshape(200, -1).numpy()
    lam = penalty * float(np.var(design, axis=0).mean())  # covariance over n, as in fit_moments
    ref = Ridge(alpha=200 * lam).fit(design, y[:, 0].numpy()).predict(design)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-8, atol=1e-10)


@pytest.fixture(scope="module")
def comparisons() -> dict[str, object]:
    torch.manual_seed(0)
    model = MaskedAutoencoder(
        img_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=1, num_heads=2,
        decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
    ).eval()  # fmt: skip
    out = {}
    for name, cfg in (("shared", SHARED), ("no_regions", NO_REGIONS)):
        fit, held = world(cfg, 768, seed=1), world(cfg, 96, seed=2)
        held.mean, held.std = fit.mean, fit.std
        out[name] = compare_knockouts(model, held, fit, base_ratio=0.5, num_masks=3)
    return out


def near_advantage_outcome(adv: torch.Tensor) -> str:
    eff = stats.paired_effect(adv.tolist())
    return stats.outcome(eff.lo, eff.hi, "increase", Q5_MARGIN)


def test_a_world_without_regional_sharing_removes_the_near_advantage(
    comparisons: dict[str, object],
) -> None:
    shared, control = comparisons["shared"], comparisons["no_regions"]
    # near patches share the region latent with the target: the data give them an advantage
    assert near_advantage_outcome(shared.near_advantage("reference")) == "agrees"
    # every patch its own region: near and far patches tell the same about the target
    assert near_advantage_outcome(control.near_advantage("reference")) == "disagrees"
    assert abs(control.details["reference_near_increase"]) < Q5_MARGIN
    assert shared.details["near_distance"] < shared.details["far_distance"]
    assert shared.details["num_knocked"] == 4 and shared.details["visible"] == 8


def test_the_comparison_holds_both_predictors_on_the_same_targets(
    comparisons: dict[str, object],
) -> None:
    cmp = comparisons["shared"]
    for errs in (cmp.model, cmp.reference):
        assert set(errs) == {"base", "near", "far"}
        assert all(e.shape == (12, 96) and bool((e >= 0).all()) for e in errs.values())
    # the reference is refitted for each visible set: losing patches never helps it (beyond noise)
    assert cmp.details["reference_near_increase"] > -0.01
    assert cmp.details["reference_far_increase"] > -0.01


def test_q5_experiment_returns_the_paired_row(make_model: Callable[..., MaskedAutoencoder]) -> None:
    images = world(SHARED, 160, seed=3)
    res = q5_experiment(make_model(), images, max_images=48, num_masks=2, targets_per_mask=2)
    assert res.question == "Q5" and res.predicted == "none" and res.margin == Q5_MARGIN
    assert len(res.paired) == 48  # the second half of 160 images, capped at 48
    assert np.mean(res.paired) == pytest.approx(res.treated - res.control_value)
    assert res.details["num_configs"] == 4
    # the base mask keeps 4 + 4 of 16 patches, each knock-out variant the training ratio's 4
    assert res.details["visible"] == 8 and res.details["num_knocked"] == 4
    with pytest.raises(ValueError, match="no room"):
        q5_experiment(make_model(), images, mask_ratio=0.0)
