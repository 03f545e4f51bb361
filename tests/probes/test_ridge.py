"""Ridge with leave-one-out penalty choice, against scikit-learn and brute-force leave-one-out."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score

from maelab.probes.ridge import DEFAULT_ALPHAS, r2, r2_scores, ridge_loo, thin_svd


def _data(n: int, d: int, t: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) + 3.0
    y = x[:, : min(d, t)] @ rng.standard_normal((min(d, t), t)) + 0.5 * rng.standard_normal((n, t))
    return x, y + 1.0


@pytest.mark.parametrize("shape", [(80, 10, 3), (40, 60, 2)])
def test_matches_sklearn_ridgecv(shape: tuple[int, int, int]) -> None:
    x, y = _data(*shape)
    fit = ridge_loo(x, y)
    sk = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True).fit(x, y)
    np.testing.assert_array_equal(fit.alpha, sk.alpha_)
    np.testing.assert_allclose(fit.coef, sk.coef_.T, atol=1e-8)
    np.testing.assert_allclose(fit.intercept, sk.intercept_, atol=1e-8)
    np.testing.assert_allclose(fit.predict(x[:5]), sk.predict(x[:5]), atol=1e-8)


def test_loo_error_is_brute_force_leave_one_out() -> None:
    x, y = _data(30, 5, 1, seed=3)
    alpha = 2.0
    fit = ridge_loo(x, y, alphas=(alpha,))
    errs = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        xm, ym = x[keep].mean(0), y[keep].mean(0)
        xc, yc = x[keep] - xm, y[keep] - ym
        w = np.linalg.solve(xc.T @ xc + alpha * np.eye(5), xc.T @ yc)
        errs.append(((x[i] - xm) @ w + ym - y[i]) ** 2)
    np.testing.assert_allclose(fit.loo_mse, np.mean(errs, axis=0), rtol=1e-8)


@pytest.mark.parametrize("shape", [(20, 6), (6, 20)])
def test_thin_svd_reconstructs(shape: tuple[int, int]) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    u, s, vt = thin_svd(x)
    np.testing.assert_allclose(u * s @ vt, x, atol=1e-10)
    np.testing.assert_allclose(s, np.linalg.svd(x, compute_uv=False), atol=1e-10)


def test_r2_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    y, pred = rng.standard_normal((20, 3)), rng.standard_normal((20, 3))
    np.testing.assert_allclose(r2_scores(y, pred), r2_score(y, pred, multioutput="raw_values"))
    assert r2(y, pred) == pytest.approx(r2_score(y, pred))
    assert r2(y, y) == 1.0
