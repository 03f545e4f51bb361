"""Collapse analysis: its numbers equal maelab.metrics on the same features."""

import math

import pytest
import torch

from maelab.analysis.collapse import collapse_stats, encoder_views, model_collapse, pool
from maelab.config import SyntheticConfig
from maelab.data.synthetic import generate_synthetic
from maelab.metrics import alignment, covariance_spectrum, effective_rank, rankme, uniformity
from maelab.models.mae import MaskedAutoencoder


def test_collapse_stats_match_the_metrics():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 16, generator=g) @ torch.diag(torch.linspace(0.1, 3, 16))
    v1, v2 = (
        z + 0.1 * torch.randn(200, 16, generator=g),
        z + 0.1 * torch.randn(200, 16, generator=g),
    )
    s = collapse_stats(z, v1, v2, label="x")
    assert s.dim == 16 and s.num_images == 200
    assert s.effective_rank == pytest.approx(effective_rank(z))
    assert s.rankme == pytest.approx(rankme(z))
    assert s.alignment == pytest.approx(alignment(v1, v2))
    assert s.uniformity == pytest.approx(uniformity(v1))
    assert s.spectrum == pytest.approx(covariance_spectrum(z).tolist())
    assert s.rank_fraction == pytest.approx(s.effective_rank / 16)
    without = collapse_stats(z)
    assert math.isnan(without.alignment) and without.uniformity == pytest.approx(uniformity(z))
    assert type(s).from_dict(s.to_dict()) == s


def test_rank_one_features_collapse_to_rank_one():
    g = torch.Generator().manual_seed(1)
    s = collapse_stats(torch.randn(100, 1, generator=g) @ torch.randn(1, 8, generator=g))
    assert s.effective_rank == pytest.approx(1.0, abs=1e-6)
    assert sum(v > 1e-9 * s.spectrum[0] for v in s.spectrum) == 1


def test_model_views_are_the_encoder_features():
    torch.manual_seed(0)
    model = MaskedAutoencoder(img_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2,
                              decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)  # fmt: skip
    images = generate_synthetic(40, SyntheticConfig(), seed=1)
    full, v1, v2 = encoder_views(model, images, num_images=30, mask_ratio=0.5)
    assert full.shape == v1.shape == v2.shape == (30, 32)
    from maelab.probes.inputs import normalised

    with torch.no_grad():
        ref = pool(model.encode(normalised(images)[:30]), "cls")
    torch.testing.assert_close(full, ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(v1, v2)  # independent masks
    s = model_collapse(model, images, num_images=30, mask_ratio=0.5)
    assert s.alignment == pytest.approx(alignment(v1, v2), rel=1e-5)
