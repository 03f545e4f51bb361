"""The exact answers of maelab.theory.gaussian, each checked against a value computed another
way: Monte Carlo through maelab's own masks and loss, least squares on samples, closed forms
from the literature, an independent optimizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maelab.config import GaussianConfig, MaskConfig
from maelab.data.gaussian import gaussian_world
from maelab.masking import MaskGeometry, mask_from_noise, mask_noise_for
from maelab.models.linear import LinearArch, LinearMAE
from maelab.theory.gaussian import (
    bayes_bound,
    code_angle,
    field_sources,
    latent_shares,
    linear_loss,
    linear_optimum,
    masked_energy,
    moments,
    reach,
)
from maelab.theory.mask_law import mask_law, patch_of_pixel
from maelab.theory.reduced_rank import AtomProblem, decoder_step, encoder_step

SMALL = GaussianConfig(image_size=8, short_scale=1.0, long_scale=3.0)


@pytest.fixture(scope="module")
def cov8() -> np.ndarray:
    return gaussian_world(SMALL).covariance


def sampled(world: GaussianConfig, mask: MaskConfig, patch: int, n: int, seed: int = 0):
    """Images (n, 1, S, S) float64 and maelab's removed-patch masks (n, L)."""
    x, _ = gaussian_world(world).sample(n, seed)
    grid = world.image_size // patch
    gen = torch.Generator().manual_seed(seed)
    noise = mask_noise_for(mask, n, MaskGeometry(grid, patch), gen)
    return x.double(), noise


def removed_pixels(noise: torch.Tensor, ratio: float, size: int, patch: int) -> np.ndarray:
    """(n, D) bool: the pixels maelab's mask removes."""
    removed = mask_from_noise(noise, ratio).removed.numpy()
    return removed[:, patch_of_pixel(size, patch)]


def model_loss(w: np.ndarray, x: torch.Tensor, noise: torch.Tensor, mask: MaskConfig, patch: int,
               loss_on: str = "masked") -> float:  # fmt: skip
    """maelab's own loss of the linear MAE whose end-to-end map is ``w``."""
    d = w.shape[0]
    model = LinearMAE(LinearArch(int(d**0.5), patch, 1, None, loss_on=loss_on)).double()
    with torch.no_grad():
        model.encoder.weight.copy_(torch.from_numpy(w))
        return float(model(x, mask.ratio, noise)[0])


@pytest.mark.parametrize(
    "mask,patch",
    [(MaskConfig(ratio=0.75), 2), (MaskConfig(ratio=0.5), 1),
     (MaskConfig(strategy="block", ratio=0.75, unit=4), 2)],
)  # fmt: skip
def test_exact_loss_is_maelabs_loss_in_expectation(cov8, mask, patch) -> None:
    law = mask_law(mask, 8, patch)
    rng = np.random.default_rng(0)
    w = 0.05 * rng.standard_normal((64, 64)) + linear_optimum(cov8, law).weights
    x, noise = sampled(SMALL, mask, patch, 60_000)
    mc = model_loss(w, x, noise, mask, patch)
    assert mc == pytest.approx(linear_loss(w, cov8, law), rel=0.01)


def test_exact_loss_with_every_pixel_counted(cov8) -> None:
    mask = MaskConfig(ratio=0.5)
    law = mask_law(mask, 8, 2, loss_on="all")
    w = 0.1 * np.random.default_rng(1).standard_normal((64, 64))
    x, noise = sampled(SMALL, mask, 2, 40_000)
    mc = model_loss(w, x, noise, mask, 2, loss_on="all")
    assert mc == pytest.approx(linear_loss(w, cov8, law), rel=0.01)


def test_bayes_bound_is_the_conditional_means_loss(cov8) -> None:
    """Monte Carlo: E[x_M | x_V] per image under maelab's masks, scored by maelab's loss."""
    mask = MaskConfig(ratio=0.75)
    law = mask_law(mask, 8, 2)
    bound = bayes_bound(cov8, law)
    assert bound.exact and bound.num_masks == 1820  # C(16, 4)
    x, noise = sampled(SMALL, mask, 2, 3000)
    removed = removed_pixels(noise, mask.ratio, 8, 2)
    errs = []
    for img, m in zip(x.reshape(len(x), -1).numpy(), removed, strict=True):
        v = ~m
        pred = cov8[np.ix_(m, v)] @ np.linalg.solve(cov8[np.ix_(v, v)], img[v])
        errs.append(((img[m] - pred) ** 2).mean())
    errs = np.array(errs)
    se = errs.std() / np.sqrt(len(errs))
    assert abs(errs.mean() - bound.value) < 4 * se


def test_bayes_bound_monte_carlo_agrees_with_enumeration(cov8) -> None:
    law = mask_law(MaskConfig(ratio=0.75), 8, 2)
    exact = bayes_bound(cov8, law)
    mc = bayes_bound(cov8, law, max_masks=10, samples=2000, seed=3)
    assert not mc.exact and abs(mc.value - exact.value) < 4 * mc.stderr


def test_bound_is_below_every_linear_mae(cov8) -> None:
    law = mask_law(MaskConfig(ratio=0.75), 8, 2)
    assert bayes_bound(cov8, law).value < linear_optimum(cov8, law).loss


def test_whole_image_optimum_is_bisulcos_closed_form(cov8) -> None:
    """W* = Sigma diag(pi) (Pi o Sigma)^-1; for pixel masks Sigma (q Sigma + (1-q) diag
    Sigma)^-1 with q = (K - 1) / (L - 1)."""
    law = mask_law(MaskConfig(ratio=0.75), 8, 1, loss_on="all")  # L = 64, K = 16
    w = linear_optimum(cov8, law).weights
    q = 15 / 63
    closed = cov8 @ np.linalg.inv(q * cov8 + (1 - q) * np.diag(np.diag(cov8)))
    assert np.allclose(w, closed, atol=1e-10)
    # patches: the diagonal becomes block-diagonal (pairs inside a patch are kept together)
    law = mask_law(MaskConfig(ratio=0.5), 8, 2, loss_on="all")
    same = law.same_atom()
    keep = np.where(same, law.p_kept, law.p_kept_kept)
    closed = cov8 * law.p_kept @ np.linalg.inv(keep * cov8)
    assert np.allclose(linear_optimum(cov8, law).weights, closed, atol=1e-10)


@pytest.mark.parametrize("loss_on", ["masked", "all"])
def test_full_rank_optimum_is_least_squares_on_samples(cov8, loss_on) -> None:
    """Regress each counted output on the zero-filled image over many sampled (image, mask)
    pairs: the fit approaches the closed form."""
    mask = MaskConfig(ratio=0.5)
    law = mask_law(mask, 8, 2, loss_on=loss_on)
    x, noise = sampled(SMALL, mask, 2, 150_000, seed=5)
    pix_removed = removed_pixels(noise, mask.ratio, 8, 2)
    flat = x.reshape(len(x), -1).numpy()
    filled = flat * ~pix_removed
    exact = linear_optimum(cov8, law)
    fitted = np.zeros((64, 64))
    for a in range(law.num_atoms):  # the outputs of one patch share their samples
        out = np.flatnonzero(law.atom == a)
        rows = pix_removed[:, out[0]] if loss_on == "masked" else slice(None)
        design = filled[rows]
        fitted[out] = np.linalg.solve(
            design.T @ design + 1e-9 * np.eye(64), design.T @ flat[rows][:, out]
        ).T
    gap = linear_loss(fitted, cov8, law) / exact.loss - 1
    assert 0 <= gap < 0.01


def test_full_rank_optimum_is_a_minimum(cov8) -> None:
    law = mask_law(MaskConfig(ratio=0.75), 8, 2)
    opt = linear_optimum(cov8, law)
    rng = np.random.default_rng(2)
    for _ in range(5):
        assert linear_loss(opt.weights + 1e-3 * rng.standard_normal((64, 64)), cov8, law) > opt.loss


def test_rank_k_optimum_matches_an_independent_optimizer(cov8) -> None:
    """L-BFGS over (D, E) from random starts on the exact loss (torch, float64)."""
    law = mask_law(MaskConfig(ratio=0.5), 8, 2)
    m = moments(cov8, law)
    k = 3
    opt = linear_optimum(cov8, law, k)
    best = min(_lbfgs_loss(m, k, seed) for seed in range(3))
    assert opt.converged
    assert opt.loss == pytest.approx(best, rel=1e-7)
    assert opt.loss > linear_optimum(cov8, law).loss


def _lbfgs_loss(m, k: int, seed: int) -> float:
    c, xm, act = (torch.from_numpy(a) for a in (m.second, m.cross, m.acting))
    g = torch.Generator().manual_seed(seed)
    d = (0.1 * torch.randn(len(c), k, generator=g, dtype=torch.float64)).requires_grad_()
    e = (0.1 * torch.randn(k, len(c), generator=g, dtype=torch.float64)).requires_grad_()
    lbfgs = torch.optim.LBFGS([d, e], max_iter=3000, tolerance_grad=1e-12,
                              tolerance_change=1e-15, line_search_fn="strong_wolfe")  # fmt: skip

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        w = (d @ e) * act
        loss = (m.variance - 2 * (w * xm).sum() + ((w @ c) * w).sum()) / m.normalizer
        loss.backward()
        return loss

    for _ in range(3):
        lbfgs.step(closure)
    return float(closure().detach())


def test_reduced_rank_start_can_sit_on_a_saddle() -> None:
    """16 px field, patch 4, ratio 0.25, k 8: alternating least squares from the reduced-rank
    form stalls above the optimum; the solver's perturbed starts get below it."""
    cov = gaussian_world(GaussianConfig(short_scale=1.0, long_scale=4.0, short_var=0.5,
                                        long_var=0.4)).covariance  # fmt: skip
    law = mask_law(MaskConfig(ratio=0.25), 16, 4)
    m = moments(cov, law)
    opt = linear_optimum(cov, law, 8)
    full = linear_optimum(cov, law).weights
    vecs = np.linalg.eigh(full @ m.second @ full.T)[1][:, ::-1][:, :8]
    p = AtomProblem.of(m.second, m.cross, law.atom)
    e = (vecs.T @ full)[:, p.order]
    for _ in range(60):
        blocks, value = decoder_step(p, e)
        e = encoder_step(p, e, blocks)
    stalled = (m.variance + value) / m.normalizer
    assert stalled > opt.loss + 1e-4


def test_rank_d_is_full_rank_and_whole_image_rank_k_is_reduced_rank_regression(cov8) -> None:
    law = mask_law(MaskConfig(ratio=0.5), 8, 2, loss_on="all")
    full = linear_optimum(cov8, law)
    assert np.allclose(linear_optimum(cov8, law, 64).weights, full.weights)
    k4 = linear_optimum(cov8, law, 4)
    m = moments(cov8, law)
    # the loss drop of reduced-rank regression is the top-k eigenvalues of W* C W*^T
    vals = np.sort(np.linalg.eigvalsh(full.weights @ m.second @ full.weights.T))[::-1]
    drop = (vals[4:].sum()) / m.normalizer
    assert k4.loss == pytest.approx(full.loss + drop, rel=1e-9)


def test_shares_sum_to_one_and_energy_is_the_monte_carlo_variance() -> None:
    world = GaussianConfig(kind="hierarchy", image_size=8, cell_size=2, region_cells=2,
                           global_dim=1, region_noise_dim=1, cell_noise_dim=1, pixel_noise=0.2)  # fmt: skip
    gw = gaussian_world(world)
    mask = MaskConfig(ratio=0.75)
    law = mask_law(mask, 8, 2)
    w = linear_optimum(gw.covariance, law, 3).weights
    shares = latent_shares(w, gw, law)
    assert sum(v.sum() for v in shares.values()) == pytest.approx(1.0)
    # Monte Carlo: the counted outputs' variance driven by the region latents alone
    load = gw.loadings["region_noise"].reshape(64, -1)
    n = 40_000
    z = np.random.default_rng(0).standard_normal((n, load.shape[1]))
    _, noise = sampled(world, mask, 2, n)
    removed = removed_pixels(noise, 0.75, 8, 2)
    out = ((z @ load.T) * ~removed) @ w.T  # (n, D): the latents' part of every output
    mc = ((out**2) * removed).sum() / n
    assert mc == pytest.approx(masked_energy(w, load, law), rel=0.03)


def test_reach_is_the_sources_mean_distance() -> None:
    """The identity map of a white field reads each output's own pixel: reach 0; a map that
    copies the pixel one to the right reads a source 1 px away."""
    white = np.eye(16)
    law = mask_law(MaskConfig(ratio=0.0), 4, 1, loss_on="all")
    assert reach(np.eye(16), white, law) == pytest.approx(0.0)
    shift = np.zeros((16, 16))
    for i in range(16):
        if i % 4 < 3:
            shift[i, i + 1] = 1.0
    assert reach(shift, white, law) == pytest.approx(1.0)
    cov = gaussian_world(GaussianConfig(image_size=4)).covariance
    s = field_sources(cov)
    assert np.allclose(s @ s, cov) and np.allclose(s, s.T)


def test_code_angle_ignores_the_basis() -> None:
    rng = np.random.default_rng(0)
    e = rng.standard_normal((3, 20))
    mix = rng.standard_normal((3, 3))
    assert code_angle(e, mix @ e) < 1e-5
    assert code_angle(e, rng.standard_normal((3, 20))) > 10
