"""Low-rank probe (Cao Q2): rank-1 images have effective rank 1; spectra against numpy."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from maelab.config import MaskConfig
from maelab.data.base import ImageSet
from maelab.masking import MaskGeometry, mask_noise
from maelab.metrics import effective_rank
from maelab.models import MaskedAutoencoder
from maelab.models.mae import patchify
from maelab.probes.low_rank import (
    low_rank_probe,
    masked_error_per_image,
    patch_singular_values,
    spectrum_effective_rank,
    top_energy_share,
)


def test_constant_images_have_rank_one_at_every_patch_size() -> None:
    imgs = torch.rand(3, 1, 1, 1).expand(3, 3, 16, 16) + 0.1
    for p in (2, 4, 8):
        s = patch_singular_values(imgs, p)
        torch.testing.assert_close(spectrum_effective_rank(s), torch.ones(3, dtype=torch.float64))
        torch.testing.assert_close(top_energy_share(s, 1), torch.ones(3, dtype=torch.float64))


def test_tiled_pattern_is_rank_one_at_its_own_patch_size() -> None:
    g = torch.Generator().manual_seed(0)
    scale = torch.rand(4, 4, generator=g, dtype=torch.float64)
    pattern = torch.rand(3, 4, 4, generator=g, dtype=torch.float64)
    # patch (i, j) is scale[i, j] * pattern
    img = torch.einsum("ij,cpq->cipjq", scale, pattern).reshape(1, 3, 16, 16)
    assert float(spectrum_effective_rank(patch_singular_values(img, 4))) == pytest.approx(1.0)
    assert float(spectrum_effective_rank(patch_singular_values(img, 2))) > 1.5


def test_spectrum_matches_numpy_and_metrics() -> None:
    img = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    s = patch_singular_values(img, 4)[0]
    ref = np.linalg.svd(patchify(img, 4)[0].double().numpy(), compute_uv=False)
    np.testing.assert_allclose(s.numpy(), ref, rtol=1e-10)
    er = float(spectrum_effective_rank(s[None]))
    assert er == pytest.approx(effective_rank(patchify(img, 4)[0], center=False))
    # k equal singular values -> effective rank k
    assert float(spectrum_effective_rank(torch.tensor([[2.0, 2.0, 2.0, 0.0]]))) == pytest.approx(3)
    assert float(top_energy_share(torch.tensor([[3.0, 4.0]]), 1)) == pytest.approx(9 / 25)


def test_masked_error_per_image_averages_to_the_loss(
    make_model: Callable[..., MaskedAutoencoder],
) -> None:
    model = make_model()
    x = torch.randn(5, 3, 16, 16)
    err = masked_error_per_image(model, x, MaskConfig(ratio=0.75), num_masks=1, seed=3)
    assert err.shape == (5,)
    # equal masked counts per image: the mean of per-image errors is the model's loss
    noise = mask_noise(
        "random", 5, MaskGeometry(4, 4), 0.75, None, torch.Generator().manual_seed(3)
    )
    with torch.no_grad():
        loss, _, _ = model(x, 0.75, noise)
    assert float(err.mean()) == pytest.approx(float(loss), rel=1e-5)


def test_low_rank_probe_on_a_model(
    images: ImageSet, make_model: Callable[..., MaskedAutoencoder]
) -> None:
    res = low_rank_probe(make_model(), images, patch_sizes=(2, 4, 8, 5), max_images=40)
    assert res.patch_sizes == [2, 4, 8]  # 5 does not divide 16
    assert res.max_rank == {2: 12, 4: 16, 8: 4}
    for p in res.patch_sizes:
        assert 1.0 <= res.effective_rank[p] <= res.max_rank[p]
        assert res.mean_spectrum[p][0] == pytest.approx(1.0)
        assert 0 < res.top_energy[p] <= 1
    assert len(res.image_error) == len(res.image_effective_rank) == 40
    assert math.isfinite(res.spearman_rho)
