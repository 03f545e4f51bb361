"""Tests for maelab.metrics: each metric against a hand value or numpy / scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.special import logsumexp

from maelab.metrics import (
    alignment,
    collapse_stats,
    covariance_spectrum,
    effective_rank,
    linear_cka,
    rankme,
    relative_update,
    uniformity,
    uniformity_loss,
)


def _orthonormal(rows: int, cols: int, seed: int, centred: bool = False) -> np.ndarray:
    """``(rows, cols)`` with orthonormal columns; also orthogonal to the ones vector if centred."""
    a = np.random.default_rng(seed).standard_normal((rows, cols))
    if centred:
        a = a - a.mean(axis=0, keepdims=True)
    q, _ = np.linalg.qr(a)
    return q


def _low_rank(n: int, d: int, singular: list[float], seed: int) -> torch.Tensor:
    """``U diag(s) V^T`` with centred orthonormal ``U``: singular values exactly ``s``."""
    k = len(singular)
    u = _orthonormal(n, k, seed, centred=True)
    v = _orthonormal(d, k, seed + 1)
    return torch.from_numpy(u @ np.diag(singular) @ v.T)


def _entropy_rank_np(s: np.ndarray) -> float:
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


# covariance_spectrum


def test_covariance_spectrum_matches_numpy_cov() -> None:
    z = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * torch.arange(1, 8)
    spec = covariance_spectrum(z.float())
    expected = np.sort(np.linalg.eigvalsh(np.cov(z.numpy(), rowvar=False)))[::-1]
    assert spec.dtype == torch.float64
    assert spec.shape == (7,)
    np.testing.assert_allclose(spec.numpy(), expected, rtol=1e-5)
    assert torch.all(spec[:-1] >= spec[1:])


def test_covariance_spectrum_rank_deficient_is_clamped() -> None:
    z = _low_rank(30, 10, [3.0, 2.0], seed=1)
    spec = covariance_spectrum(z)
    assert torch.all(spec >= 0)
    # Non-zero eigenvalues are s^2 / (N - 1) since U is centred.
    np.testing.assert_allclose(spec[:2].numpy(), [9.0 / 29, 4.0 / 29], rtol=1e-10)
    assert spec[2:].max().item() < 1e-12


# effective_rank


@pytest.mark.parametrize("k", [1, 3, 8])
def test_effective_rank_equal_singular_values_is_k(k: int) -> None:
    z = _low_rank(40, 16, [2.5] * k, seed=k)
    assert effective_rank(z) == pytest.approx(k, abs=1e-9)
    assert effective_rank(z, center=False) == pytest.approx(k, abs=1e-9)


def test_effective_rank_unequal_between_1_and_k_matches_gram_eigenvalues() -> None:
    z = _low_rank(40, 16, [10.0, 3.0, 1.0, 0.1], seed=7)
    er = effective_rank(z)
    assert 1.0 < er < 4.0
    # Another route: singular values as square roots of the Gram eigenvalues.
    zc = z.numpy() - z.numpy().mean(axis=0)
    s = np.sqrt(np.clip(np.linalg.eigvalsh(zc.T @ zc), 0, None))
    assert er == pytest.approx(_entropy_rank_np(s), rel=1e-6)
    assert er == pytest.approx(_entropy_rank_np(np.array([10.0, 3.0, 1.0, 0.1])), rel=1e-9)


def test_effective_rank_scale_invariant_and_centring() -> None:
    z = torch.randn(64, 12, generator=torch.Generator().manual_seed(3))
    assert effective_rank(5.0 * z) == pytest.approx(effective_rank(z), rel=1e-6)
    # A constant offset is removed by centring but adds a direction without it.
    shifted = z + 100.0
    assert effective_rank(shifted) == pytest.approx(effective_rank(z), rel=1e-8)
    assert effective_rank(shifted, center=False) < effective_rank(z, center=False)


def test_effective_rank_constant_features_is_zero() -> None:
    z = torch.ones(10, 4)
    assert effective_rank(z) == 0.0
    assert effective_rank(z, center=False) == pytest.approx(1.0)


# rankme


def test_rankme_identity_is_d() -> None:
    d, eps = 16, 1e-7
    p = 1.0 / d + eps
    by_hand = math.exp(-d * p * math.log(p))
    assert rankme(torch.eye(d), eps=eps) == pytest.approx(by_hand, rel=1e-12)
    assert rankme(torch.eye(d)) == pytest.approx(d, rel=1e-4)
    # Scaled rows of an orthonormal basis (more samples than dims): still d.
    z = torch.cat([3.0 * torch.eye(d), 3.0 * torch.eye(d)])
    assert rankme(z, eps=0.0) == pytest.approx(d, rel=1e-12)


def test_rankme_is_not_centred_and_matches_numpy() -> None:
    z = torch.randn(50, 8, generator=torch.Generator().manual_seed(4))
    s = np.linalg.svd(z.numpy().astype(np.float64), compute_uv=False)
    p = s / s.sum() + 1e-7
    assert rankme(z) == pytest.approx(float(np.exp(-(p * np.log(p)).sum())), rel=1e-6)
    assert rankme(torch.full((10, 4), 2.0)) == pytest.approx(1.0, rel=1e-5)


# alignment


def test_alignment_identical_views_is_zero() -> None:
    z = torch.randn(20, 5, generator=torch.Generator().manual_seed(5))
    assert alignment(z, z) == pytest.approx(0.0, abs=1e-12)
    assert alignment(z, 3.0 * z) == pytest.approx(0.0, abs=1e-12)  # normalised inside


def test_alignment_by_hand() -> None:
    z1 = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    z2 = torch.tensor([[0.0, 5.0], [-1.0, 0.0]])  # orthogonal: |d|^2 = 2; antipodal: |d|^2 = 4
    assert alignment(z1, z2) == pytest.approx((2.0 + 4.0) / 2)
    assert alignment(z1, z2, alpha=1) == pytest.approx((math.sqrt(2) + 2.0) / 2)


# uniformity


def test_uniformity_antipodal_by_hand() -> None:
    z = torch.tensor([[1.0, 0.0], [-3.0, 0.0]])  # one pair, |d|^2 = 4
    assert uniformity(z) == pytest.approx(-8.0)
    # +-e1, +-e2: 2 antipodal pairs (|d|^2 = 4) and 4 orthogonal ones (|d|^2 = 2).
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -1.0]])
    expected = math.log((2 * math.exp(-8.0) + 4 * math.exp(-4.0)) / 6)
    assert uniformity(z) == pytest.approx(expected, rel=1e-12)


def test_uniformity_matches_scipy_and_is_stable_for_large_t() -> None:
    z = torch.randn(30, 6, generator=torch.Generator().manual_seed(6))
    zn = z.numpy().astype(np.float64)
    zn /= np.linalg.norm(zn, axis=1, keepdims=True)
    sq = pdist(zn, "sqeuclidean")
    assert uniformity(z) == pytest.approx(float(np.log(np.mean(np.exp(-2 * sq)))), rel=1e-6)
    assert uniformity(z, t=500) == pytest.approx(
        float(logsumexp(-500 * sq) - np.log(sq.size)), rel=1e-6
    )
    assert uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), t=500) == pytest.approx(-2000.0)


# uniformity_loss


def test_uniformity_loss_matches_double_loop() -> None:
    z = torch.randn(7, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    zn = z.numpy() / np.linalg.norm(z.numpy(), axis=1, keepdims=True)
    n = zn.shape[0]
    by_loop = sum(float(zn[i] @ zn[j]) ** 2 for i in range(n) for j in range(n)) / n**2
    loss = uniformity_loss(z)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(by_loop, rel=1e-12)


def test_uniformity_loss_extremes_include_diagonal() -> None:
    assert uniformity_loss(3.0 * torch.eye(5)).item() == pytest.approx(1 / 5)  # diagonal only
    assert uniformity_loss(torch.ones(6, 3)).item() == pytest.approx(1.0)  # collapsed


def test_uniformity_loss_gradcheck() -> None:
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert torch.autograd.gradcheck(uniformity_loss, (z.requires_grad_(),))


# linear_cka


def _cka_gram_np(x: np.ndarray, y: np.ndarray) -> float:
    """CKA through centred Gram matrices: tr(K L) / sqrt(tr(K K) tr(L L))."""
    h = np.eye(len(x)) - 1.0 / len(x)
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float(np.trace(k @ l_) / np.sqrt(np.trace(k @ k) * np.trace(l_ @ l_)))


def test_linear_cka_identity_and_invariances() -> None:
    g = torch.Generator().manual_seed(10)
    x = torch.randn(40, 8, generator=g, dtype=torch.float64)
    y = torch.randn(40, 5, generator=g, dtype=torch.float64) + x[:, :5]
    q = torch.from_numpy(_orthonormal(8, 8, seed=11))
    assert linear_cka(x, x) == pytest.approx(1.0, rel=1e-12)
    assert linear_cka(x, x @ q * 7.0 + 1.0) == pytest.approx(1.0, rel=1e-12)
    base = linear_cka(x, y)
    assert 0.0 < base < 1.0
    assert linear_cka(x @ q, y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(0.01 * x, 50.0 * y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(y, x) == pytest.approx(base, rel=1e-12)
    assert base == pytest.approx(_cka_gram_np(x.numpy(), y.numpy()), rel=1e-10)


def test_linear_cka_errors() -> None:
    with pytest.raises(ValueError, match="same number of rows"):
        linear_cka(torch.randn(5, 3), torch.randn(6, 3))
    with pytest.raises(ValueError, match="constant"):
        linear_cka(torch.ones(5, 3), torch.randn(5, 3))


# relative_update


def test_relative_update_by_hand_and_numpy() -> None:
    before = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    after = torch.tensor([[3.0, 4.0], [1.0, 2.0]])  # 0 / 5 and 2 / 1
    assert relative_update(before, after) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(12)
    b = torch.randn(2, 5, 8, generator=g)
    a = b + 0.1 * torch.randn(2, 5, 8, generator=g)
    bn, an = b.numpy().astype(np.float64), a.numpy().astype(np.float64)
    expected = np.mean(np.linalg.norm(an - bn, axis=-1) / np.linalg.norm(bn, axis=-1))
    assert relative_update(b, a) == pytest.approx(float(expected), rel=1e-6)


def test_relative_update_errors() -> None:
    with pytest.raises(ValueError, match="same shape"):
        relative_update(torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(ValueError, match="zero norm"):
        relative_update(torch.zeros(2, 3), torch.ones(2, 3))


# edge cases shared by the matrix metrics


@pytest.mark.parametrize(
    "fn",
    [covariance_spectrum, effective_rank, uniformity, lambda z: linear_cka(z, z)],
    ids=["spectrum", "effective_rank", "uniformity", "cka"],
)
def test_fewer_than_two_samples_raises(fn) -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        fn(torch.randn(1, 4))


@pytest.mark.parametrize(
    "fn",
    [covariance_spectrum, effective_rank, rankme, uniformity, lambda z: alignment(z, z)],
    ids=["spectrum", "effective_rank", "rankme", "uniformity", "alignment"],
)
def test_bad_matrices_raise(fn) -> None:
    with pytest.raises(ValueError, match="2-D"):
        fn(torch.randn(8))
    bad = torch.randn(4, 3)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fn(bad)


def test_bad_parameters_raise() -> None:
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="alpha"):
        alignment(z, z, alpha=0)
    with pytest.raises(ValueError, match="same shape"):
        alignment(z, z[:3])
    with pytest.raises(ValueError, match="t must be"):
        uniformity(z, t=0)
    with pytest.raises(ValueError, match="eps"):
        rankme(z, eps=-1.0)
    with pytest.raises(ValueError, match="2-D"):
        uniformity_loss(torch.randn(3))


def test_uniformity_blocks_match_pdist_for_many_rows() -> None:
    z = torch.randn(2100, 3, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    z[5] = 0.0  # a zero row stays a zero vector after normalisation
    zn = z.numpy() / np.maximum(np.linalg.norm(z.numpy(), axis=1, keepdims=True), 1e-12)
    sq = pdist(zn, "sqeuclidean")
    assert uniformity(z) == pytest.approx(float(logsumexp(-2 * sq) - np.log(sq.size)), rel=1e-10)


# ---------------------------------------------------------------- collapse_stats
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
