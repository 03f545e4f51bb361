"""The rank-k linear MAE under a masked loss, solved on exact moments.

With maelab's loss an output counts only when its atom (patch or mask unit) is removed, so
every atom u sees its own input moment ``A_u = P_u C P_u`` (``P_u`` zeroes the atom's own,
always zero-filled, pixels) and reduced-rank regression does not apply. The loss in
(decoder D, encoder E) is

    f(D, E) = sum_u tr(D_u E A_u E^T D_u^T) - 2 tr(D_u E B_u),   B_u = P_u X[:, u]

Alternating least squares: for a fixed E each atom's decoder rows are a k x k solve
(`decoder_step`); for a fixed D, E solves the normal equations sum_u S_u E A_u = D^T X~
(`encoder_step`, conjugate gradients), S_u = D_u^T D_u. The residual of those equations is
the gradient of the loss with the decoder at its optimum, so L-BFGS on E alone (variable
projection) takes the same two steps far faster; ALS sweeps then finish until the loss
settles. The reduced-rank start (top-k directions of the full optimum) can sit on a saddle
of the lattice's symmetry (measured: patch 4, ratio 0.25, k 8 stops 6e-4 above the optimum),
so starts are perturbed and several are run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass(frozen=True)
class AtomProblem:
    """The loss's moments with pixels grouped by atom: U atoms of ``size`` pixels each."""

    order: np.ndarray  # (D,) pixel index at each grouped position
    second: np.ndarray  # (D, D) C, grouped
    cross: np.ndarray  # (D, D) X, grouped, zero within an atom
    second_blocks: np.ndarray  # (U, m, m) C's diagonal blocks
    second_inv: np.ndarray  # (D, D)

    @classmethod
    def of(cls, second: np.ndarray, cross: np.ndarray, atom: np.ndarray) -> AtomProblem:
        order = np.argsort(atom, kind="stable")
        u = int(atom.max()) + 1
        size = len(order) // u
        c = second[np.ix_(order, order)]
        blocks = c.reshape(u, size, u, size)[np.arange(u), :, np.arange(u), :]
        return cls(order, c, cross[np.ix_(order, order)], blocks, np.linalg.inv(c))

    @property
    def atoms(self) -> int:
        return self.second_blocks.shape[0]

    @property
    def size(self) -> int:
        return self.second_blocks.shape[1]


def decoder_step(p: AtomProblem, e: np.ndarray) -> tuple[np.ndarray, float]:
    """Each atom's optimal decoder rows (U, m, k) for encoder ``e`` (k, D; grouped order), and
    the loss's variable part there: -sum_u tr(r_u^T G_u^-1 r_u)."""
    k, u, size = e.shape[0], p.atoms, p.size
    eu = e.reshape(k, u, size)
    ec = e @ p.second
    mixed = np.einsum("kum,jum->ukj", eu, ec.reshape(k, u, size))  # E_u C E^T
    own = np.einsum("kum,umn,jun->ukj", eu, p.second_blocks, eu)  # E_u C_uu E_u^T
    g = (ec @ e.T)[None] - mixed - mixed.transpose(0, 2, 1) + own  # (U, k, k) = E A_u E^T
    r = (e @ p.cross).reshape(k, u, size).transpose(1, 0, 2)  # (U, k, m) = E B_u
    # a relative ridge far below any effect keeps a code with a dead direction solvable
    scale = np.trace(g, axis1=1, axis2=2)[:, None, None] / k
    solved = np.linalg.solve(g + 1e-12 * scale * np.eye(k), r)
    return solved.transpose(0, 2, 1), float(-(r * solved).sum())


def _normal_equations(
    p: AtomProblem, decoder_blocks: np.ndarray
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, np.ndarray]:
    """The encoder's normal equations for a fixed decoder: (E -> sum_u S_u E A_u, D^T X~, S)."""
    u, size, k = decoder_blocks.shape
    s = np.einsum("umk,umj->ukj", decoder_blocks, decoder_blocks)  # (U, k, k)
    s_total = s.sum(0)

    def per_atom(z: np.ndarray) -> np.ndarray:  # column j -> S_atom(j) z[:, j]
        return np.einsum("ukj,jum->kum", s, z.reshape(k, u, size)).reshape(k, -1)

    def apply(z: np.ndarray) -> np.ndarray:
        zc = z @ p.second
        own = np.einsum("kum,umn->kun", z.reshape(k, u, size), p.second_blocks).reshape(k, -1)
        return s_total @ zc - per_atom(zc) - per_atom(z) @ p.second + per_atom(own)

    rhs = decoder_blocks.reshape(u * size, k).T @ p.cross
    return apply, rhs, s_total


def encoder_step(p: AtomProblem, e: np.ndarray, decoder_blocks: np.ndarray) -> np.ndarray:
    """The optimal encoder for a fixed decoder: conjugate gradients from ``e``, preconditioned
    by the normal equations' leading term S E C."""
    apply, rhs, s_total = _normal_equations(p, decoder_blocks)

    ridge = 1e-12 * np.trace(s_total) / len(s_total) * np.eye(len(s_total))

    def precondition(r: np.ndarray) -> np.ndarray:  # a ridge: a dead code direction is free
        return np.linalg.solve(s_total + ridge, r) @ p.second_inv

    x, r = e, rhs - apply(e)
    z = precondition(r)
    step, rz = z, float((r * z).sum())
    scale = float(np.linalg.norm(rhs)) or 1.0
    for _ in range(500):
        if np.linalg.norm(r) <= 1e-12 * scale:
            break
        a_step = apply(step)
        curvature = float((step * a_step).sum())
        if curvature <= 0.0:  # only free directions left: the loss is flat along them
            break
        alpha = rz / curvature
        x, r = x + alpha * step, r - alpha * a_step
        z = precondition(r)
        rz_new = float((r * z).sum())
        step, rz = z + (rz_new / rz) * step, rz_new
    return x


def value_and_gradient(p: AtomProblem, e: np.ndarray) -> tuple[float, np.ndarray]:
    """The loss's variable part with the decoder at its optimum, and its gradient in E."""
    decoder_blocks, value = decoder_step(p, e)
    apply, rhs, _ = _normal_equations(p, decoder_blocks)
    return value, 2.0 * (apply(e) - rhs)


@dataclass(frozen=True)
class RankSolution:
    decoder: np.ndarray  # (D, k), pixel order
    encoder: np.ndarray  # (k, D), pixel order
    value: float  # the loss's variable part (add the variance term for the loss)
    iterations: int  # L-BFGS iterations + ALS sweeps of the best start
    converged: bool  # the last ALS sweep lowered the loss by <= tol (relative)
    start_spread: float  # largest minus smallest value over the starts (relative)


def solve_rank_k(
    p: AtomProblem, starts: list[np.ndarray], tol: float = 1e-13, max_sweeps: int = 200
) -> RankSolution:
    """The best optimum over ``starts`` (each (k, D), pixel order): L-BFGS on the encoder with
    the decoder solved out, then ALS sweeps until a sweep lowers the loss by <= tol."""
    results = [_descend(p, start[:, p.order], tol, max_sweeps) for start in starts]
    best = min(results, key=lambda r: r[1])
    e, value, iterations, converged = best
    decoder_blocks, _ = decoder_step(p, e)
    k = e.shape[0]
    decoder = np.empty((len(p.order), k))
    decoder[p.order] = decoder_blocks.reshape(-1, k)
    encoder = np.empty_like(e)
    encoder[:, p.order] = e
    values = [r[1] for r in results]
    spread = (max(values) - min(values)) / abs(min(values))
    return RankSolution(decoder, encoder, value, iterations, converged, spread)


def _descend(
    p: AtomProblem, e: np.ndarray, tol: float, max_sweeps: int
) -> tuple[np.ndarray, float, int, bool]:
    k = e.shape[0]

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = value_and_gradient(p, flat.reshape(k, -1))
        return value, grad.ravel()

    res = minimize(
        fun, e.ravel(), jac=True, method="L-BFGS-B",
        options={"maxiter": 5_000, "maxcor": 30, "ftol": 1e-16, "gtol": 1e-13},
    )  # fmt: skip
    e = res.x.reshape(k, -1)
    previous = np.inf
    for sweep in range(1, max_sweeps + 1):
        decoder_blocks, value = decoder_step(p, e)
        if previous - value <= tol * abs(value):
            return e, value, int(res.nit) + sweep, True
        previous = value
        e = encoder_step(p, e, decoder_blocks)
    return e, value, int(res.nit) + max_sweeps, False
