"""Identifiability probe: true latents as features read ~1, the control latent ~0."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from maelab.config import SyntheticConfig
from maelab.data.base import ImageSet
from maelab.data.synthetic import generate_synthetic, synthetic_layout
from maelab.evaluation.features import Features
from maelab.models import MaskedAutoencoder
from maelab.probes.identifiability import (
    LEVELS,
    identifiability,
    identifiability_from_features,
    nystroem_features,
    pixel_identifiability,
    rbf_kernel,
)
from maelab.probes.inputs import holdout_split


def truth_features(images: ImageSet, cfg: SyntheticConfig, patch: int = 4) -> Features:
    """Each patch token holds the latents of its own cell and region; pooled holds z_g."""
    lat = images.latents
    layout = synthetic_layout(cfg, patch)
    cell, region = layout["patch_cell"], layout["patch_region"]
    tokens = torch.cat(
        [lat["cell"][:, cell], lat["cell_noise"][:, cell], lat["region"][:, region],
         lat["region_noise"][:, region]],
        dim=-1,
    )  # fmt: skip
    return Features({"truth": lat["global"]}, "truth", tokens=tokens, patch_size=patch,
                    image_size=cfg.image_size)  # fmt: skip


@pytest.fixture(scope="module")
def split() -> tuple[ImageSet, ImageSet]:
    return holdout_split(generate_synthetic(600, SyntheticConfig(), seed=3))


def test_true_latents_are_identified_and_control_is_not(split) -> None:
    fit, held = split
    cfg = SyntheticConfig()
    res = identifiability_from_features(
        truth_features(fit, cfg), fit, truth_features(held, cfg), held, label="truth"
    )
    s = res.summary()
    assert res.levels() == list(LEVELS)
    for level in ("global", "region", "region_noise", "cell", "cell_noise"):
        assert s[level] > 0.98, (level, s[level])
        assert s[f"{level}_kernel"] > 0.8, (level, s[f"{level}_kernel"])
    assert abs(s["control"]) < 0.05 and abs(s["control_kernel"]) < 0.05
    assert s["class"] > 0.5  # chance 0.1; classes overlap (z_g mixture, within-class std 0.75)
    assert res.num_fit == 300 and res.num_held_out == 300


def test_kernel_ridge_recovers_a_nonlinear_target(split) -> None:
    """z_g through an invertible non-linearity (cube): the RBF probe beats the linear one."""
    fit, held = split
    cfg = SyntheticConfig()

    def warped(images: ImageSet) -> Features:
        f = truth_features(images, cfg)
        warp = images.latents["global"] ** 3
        return Features({"warped": warp}, "warped", tokens=f.tokens, patch_size=4, image_size=16)

    res = identifiability_from_features(
        warped(fit), fit, warped(held), held, gamma_scales=(0.5, 2.0)
    )
    glob = next(s for s in res.scores if s.level == "global")
    assert glob.kernel > glob.linear + 0.1


def test_nystroem_with_every_row_is_the_exact_kernel() -> None:
    x = np.random.default_rng(0).standard_normal((40, 3))
    phi, phi_h = nystroem_features(x, x[:5], gamma=0.3, components=40)
    np.testing.assert_allclose(phi @ phi.T, rbf_kernel(x, x, 0.3), atol=1e-6)
    np.testing.assert_allclose(phi_h @ phi.T, rbf_kernel(x[:5], x, 0.3), atol=1e-6)


def test_model_and_pixel_baselines_run(make_model: Callable[..., MaskedAutoencoder]) -> None:
    images = generate_synthetic(160, SyntheticConfig(), seed=4)
    model = make_model()
    res = identifiability(model, images, max_images=80, label="tiny")
    assert {s.feature for s in res.scores} >= {"cls", "mean", "region tokens", "cell tokens"}
    assert all(np.isfinite(s.linear) for s in res.scores)
    assert res.num_fit == 80 and res.num_held_out == 80
    pix = pixel_identifiability(images, patch_size=4, max_images=80, kernel=False)
    assert {s.feature for s in pix.scores} >= {"pixels", "region tokens"}
    assert np.isnan(pix.summary()["global_kernel"])
    # fitting on another set and probing a block's output also work
    other = identifiability(model, images, fit_images=generate_synthetic(80, SyntheticConfig(), 5),
                            max_images=80, layer=0, kernel=False)  # fmt: skip
    assert other.num_fit == 80


def test_requires_synthetic_latents(images: ImageSet, make_model) -> None:
    bare = ImageSet(images.images, images.labels, images.num_classes, images.mean, images.std)
    with pytest.raises(ValueError, match="latents"):
        identifiability(make_model(), bare, max_images=40)
