"""Exact answers for Gaussian images x ~ N(0, Sigma) under maelab's masks (docs/theory.md,
"Calibration: known answers").

* The Bayes bound: the lowest masked loss any MAE can reach. x_M given x_V is Gaussian, its
  mean is linear in x_V, and its error is tr(Sigma_MM - Sigma_MV Sigma_VV^-1 Sigma_VM); maelab's
  loss averages the per-patch mean squared error over removed patches, which for a fixed count
  of removed patches is the mean over removed pixels.
* The linear MAE: code E x~ of the zero-filled image x~, output D E x~. Its expected loss is a
  quadratic form in W = D E whose coefficients are the mask law's moments times Sigma (the
  `Moments`); the full-rank optimum is closed form, rank k with the whole image as target is
  reduced-rank regression, rank k with maelab's loss (removed pixels only) is solved by
  alternating least squares on those exact moments.
* Reach and per-latent energy: read on W restricted to counted outputs and visible inputs,
  averaged over masks, so they do not depend on the code's basis.

Pure functions on numpy float64 arrays; pixels in raster order, one channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import subspace_angles
from threadpoolctl import threadpool_limits

from maelab.data.gaussian import GaussianWorld, pixel_coordinates
from maelab.theory.mask_law import MaskLaw
from maelab.theory.reduced_rank import AtomProblem, solve_rank_k


@dataclass(frozen=True)
class Moments:
    """loss(W) = (variance - 2 <W~, cross> + <W~ second, W~>) / normalizer, W~ = W * acting.

    ``acting`` zeroes the entries of W that only ever multiply zero-filled inputs (an output's
    own atom under a masked loss), so the loss does not see them.
    """

    second: np.ndarray  # (D, D): E[counted_i x~ x~^T] for any counted output i, as one matrix
    cross: np.ndarray  # (D, D): E[counted_i x~_j x_i]
    acting: np.ndarray  # (D, D) 0/1
    variance: float  # E[sum over counted outputs of x_i^2]
    normalizer: float  # expected count of counted pixels


def second_moment(m: np.ndarray, law: MaskLaw) -> np.ndarray:
    """E over masks of the zero-filled second moment of a covariance ``m`` seen by one counted
    output outside its atom: pairs in one atom are kept together, pairs in two apart."""
    same = law.same_atom()
    if law.loss_on == "all":
        together, apart = law.p_kept, law.p_kept_kept
    else:
        together, apart = law.p_removed_kept, law.p_removed_kept_kept
    return m * np.where(same, together, apart)


def moments(cov: np.ndarray, law: MaskLaw) -> Moments:
    """The coefficients of the linear MAE's expected loss under ``law`` (see `Moments`)."""
    d = cov.shape[0]
    if law.loss_on == "all":
        acting = np.ones((d, d))
        return Moments(second_moment(cov, law), law.p_kept * cov, acting, np.trace(cov), d)
    acting = (~law.same_atom()).astype(np.float64)
    variance = law.p_removed * np.trace(cov)
    cross = law.p_removed_kept * cov * acting
    return Moments(second_moment(cov, law), cross, acting, variance, law.p_removed * d)


def linear_loss(weights: np.ndarray, cov: np.ndarray, law: MaskLaw) -> float:
    """Exact expected loss of the end-to-end map ``weights`` (D, D): output = W x~."""
    m = moments(cov, law)
    w = weights * m.acting
    quad = ((w @ m.second) * w).sum()
    return float((m.variance - 2.0 * (w * m.cross).sum() + quad) / m.normalizer)


# ---------------------------------------------------------------- the Bayes bound
@dataclass(frozen=True)
class BayesBound:
    value: float
    exact: bool  # every mask of the law averaged; else a Monte Carlo mean over drawn masks
    stderr: float  # of the Monte Carlo mean (0 when exact)
    num_masks: int


def bayes_bound(
    cov: np.ndarray, law: MaskLaw, max_masks: int = 20_000, samples: int = 4_000, seed: int = 0
) -> BayesBound:
    """The lowest expected loss any predictor of the removed pixels from the visible ones has.

    Per mask, the error of E[x_M | x_V] is tr((Sigma^-1)_MM^-1); divided by the counted pixels
    (the removed ones, or all under ``loss_on="all"``) and averaged over the law's masks.
    """
    masks, exact = law.masks(max_masks, samples, seed)
    precision = np.linalg.inv(cov)
    per_mask = np.empty(masks.shape[0])
    with threadpool_limits(1, user_api="blas"):  # many small inverses: one thread is fastest
        for n, removed in enumerate(masks):
            idx = np.flatnonzero(removed)
            err = np.trace(np.linalg.inv(precision[np.ix_(idx, idx)])) if idx.size else 0.0
            count = idx.size if law.loss_on == "masked" else law.num_pixels
            per_mask[n] = err / count
    stderr = 0.0 if exact else float(per_mask.std(ddof=1) / np.sqrt(per_mask.size))
    return BayesBound(float(per_mask.mean()), exact, stderr, int(per_mask.size))


# ---------------------------------------------------------------- the linear MAE's optimum
@dataclass(frozen=True)
class LinearOptimum:
    weights: np.ndarray  # (D, D) end-to-end map (decoder @ encoder)
    encoder: np.ndarray | None  # (k, D): rows spanning the code (None at full rank)
    rank: int
    loss: float
    iterations: int  # L-BFGS iterations + ALS sweeps; 0 for a closed form
    converged: bool


def linear_optimum(
    cov: np.ndarray, law: MaskLaw, rank: int | None = None, starts: int = 2, seed: int = 0
) -> LinearOptimum:
    """The linear MAE's optimum at code width ``rank`` (None or >= D: full rank).

    Rank k under a masked loss: the best of ``starts`` runs of `solve_rank_k` (the first from
    the reduced-rank form, perturbed; the others random), seeded by ``seed``.
    """
    d = cov.shape[0]
    m = moments(cov, law)
    with threadpool_limits(1, user_api="blas"):  # many small solves: one thread is fastest
        full = full_rank_optimum(m, law)
        if rank is None or rank >= d:
            return LinearOptimum(full, None, d, linear_loss(full, cov, law), 0, True)
        # the reduced-rank form: the top-k directions of the full optimum's output
        _, vecs = np.linalg.eigh(full @ m.second @ full.T)
        basis = vecs[:, ::-1][:, :rank]  # (D, k)
        encoder = basis.T @ full
        if law.loss_on == "all":  # every output sees the same second moment: exact
            w = basis @ encoder
            return LinearOptimum(w, encoder, rank, linear_loss(w, cov, law), 0, True)
        rng = np.random.default_rng(seed)
        scale = np.abs(encoder).mean()
        first = encoder + 1e-2 * scale * rng.standard_normal(encoder.shape)
        others = [scale * rng.standard_normal(encoder.shape) for _ in range(starts - 1)]
        problem = AtomProblem.of(m.second, m.cross, law.atom)
        sol = solve_rank_k(problem, [first, *others])
    w = sol.decoder @ sol.encoder
    loss = linear_loss(w, cov, law)
    return LinearOptimum(w, sol.encoder, rank, loss, sol.iterations, sol.converged)


def full_rank_optimum(m: Moments, law: MaskLaw) -> np.ndarray:
    """Closed form: W = cross second^-1 (whole image); under a masked loss row by row, each
    output solving on the inputs outside its own atom (a Schur complement of second^-1)."""
    h = np.linalg.inv(m.second)
    if law.loss_on == "all":
        return m.cross @ h  # Bisulco et al.: Sigma diag(pi) (Pi o Sigma)^-1
    w = m.cross @ h
    for idx in _atom_members(law):
        # (second restricted to the other atoms)^-1 = h - h[:, u] h[u, u]^-1 h[u, :] there
        correction = np.linalg.solve(h[np.ix_(idx, idx)], h[idx, :])
        w[idx] -= (m.cross[idx] @ h[:, idx]) @ correction
        w[idx[:, None], idx[None, :]] = 0.0
    return w


def _atom_members(law: MaskLaw) -> np.ndarray:
    """(U, m) pixel indices of each atom (atoms are equal-sized)."""
    order = np.argsort(law.atom, kind="stable")
    return order.reshape(law.num_atoms, -1)


# ---------------------------------------------------------------- what a map reads
def source_energy(weights: np.ndarray, loading: np.ndarray, law: MaskLaw) -> np.ndarray:
    """(D, q): the variance each independent source (a column of ``loading``, x = A s) puts
    into each counted output of W x~, averaged over masks. Zero for outputs not counted.

    E[counted_i (sum_j W_ij kept_j A_js)^2]: input pairs in one atom are kept together (with
    the probability ``together``), pairs in two atoms apart, as in `second_moment`.
    """
    m = moments(loading @ loading.T, law)
    w = weights * m.acting
    if law.loss_on == "all":
        together, apart = law.p_kept, law.p_kept_kept
    else:
        together, apart = law.p_removed_kept, law.p_removed_kept_kept
    energy = apart * (w @ loading) ** 2
    for idx in _atom_members(law):
        energy += (together - apart) * (w[:, idx] @ loading[idx]) ** 2
    return energy


def masked_energy(weights: np.ndarray, loading: np.ndarray, law: MaskLaw) -> float:
    """Variance the sources of pixel loading ``loading`` (D, q) put into the counted outputs
    of W x~, averaged over masks (the per-latent energy)."""
    return float(source_energy(weights, loading, law).sum())


def field_sources(cov: np.ndarray) -> np.ndarray:
    """Sigma^1/2 (symmetric): x = Sigma^1/2 n with one white source per pixel, the source of
    column j sitting at pixel j (for a stationary field a local, bell-shaped loading)."""
    vals, vecs = np.linalg.eigh(cov)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def reach(weights: np.ndarray, cov: np.ndarray, law: MaskLaw) -> float:
    """Mean distance (px) from a counted output to the field's sources that drive it through
    W x~ (`field_sources`), weighted by the variance each source puts into the output and
    averaged over masks. Parameter noise that the loss does not see barely moves it."""
    pos = pixel_coordinates(int(round(np.sqrt(cov.shape[0]))))
    dist = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
    energy = source_energy(weights, field_sources(cov), law)
    return float((energy * dist).sum() / energy.sum())


def latent_shares(weights: np.ndarray, world: GaussianWorld, law: MaskLaw) -> dict[str, np.ndarray]:
    """Each latent node's share of the counted outputs' variance: {level: (nodes,)}, plus
    ``pixel_noise``; the shares sum to 1 over levels, nodes and the noise."""
    total = masked_energy(weights, field_sources(world.covariance), law)
    out = {
        level: np.array([masked_energy(weights, load[:, n], law) for n in range(load.shape[1])])
        / total
        for level, load in world.loadings.items()
    }
    noise = np.sqrt(world.noise_var) * np.eye(world.num_pixels)
    out["pixel_noise"] = np.array([masked_energy(weights, noise, law) / total])
    return out


def code_angle(
    encoder_a: np.ndarray, encoder_b: np.ndarray, metric: np.ndarray | None = None
) -> float:
    """Largest principal angle (degrees) between two codes' row spaces (k, D).

    With a ``metric`` (the inputs' second moment) the rows are compared as the codes they give
    on the data, ``E metric^1/2``: a direction the inputs hardly visit, which moves neither the
    code nor the loss, does not move the angle either.
    """
    if metric is not None:
        root = field_sources(metric)
        encoder_a, encoder_b = encoder_a @ root, encoder_b @ root
    return float(np.degrees(subspace_angles(encoder_a.T, encoder_b.T).max()))


def eigengap(full: np.ndarray, cov: np.ndarray, law: MaskLaw, rank: int) -> float:
    """Relative gap (l_k - l_k+1) / l_k of the full-rank optimum's output spectrum
    (eigenvalues of W~ second W~^T): a code of width k is well defined when it is wide."""
    m = moments(cov, law)
    w = full * m.acting
    vals = np.sort(np.linalg.eigvalsh(w @ m.second @ w.T))[::-1]
    return float((vals[rank - 1] - vals[rank]) / vals[rank - 1])
