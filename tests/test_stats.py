"""The study's statistics against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from maelab import stats
from maelab.stats import AGREES, DISAGREES, INCONCLUSIVE, REGIME_NOT_REACHED

# t_{0.975, 2} in closed form: with 2 df, t_q = (2q - 1) / sqrt(2 q (1 - q))
T_975_2 = (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025)  # 4.3027


# ---------------------------------------------------------------- paired effect
def test_paired_effect_by_hand() -> None:
    # differences 1, 2, 3: mean 2, sd 1, se 1 / sqrt(3), 2 df
    eff = stats.paired_effect([1.0, 2.0, 3.0])
    half = T_975_2 / math.sqrt(3)
    assert (eff.mean, eff.sd, eff.n, eff.level) == (2.0, 1.0, 3, 0.95)
    assert eff.lo == pytest.approx(2.0 - half, abs=1e-12)
    assert eff.hi == pytest.approx(2.0 + half, abs=1e-12)
    assert eff.half_width == pytest.approx(half, abs=1e-12)
    assert stats.min_detectable([1.0, 2.0, 3.0]) == pytest.approx(2.484138, abs=1e-6)
    # t = 2 / (1 / sqrt 3) = 3.4641 with 2 df: two-sided p = 0.07418
    assert eff.p_value == pytest.approx(0.0741799, abs=1e-6)


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("level", [0.95, 0.99, 0.9875])
def test_paired_effect_matches_scipy(n: int, level: float) -> None:
    rng = np.random.default_rng(n)
    treated, control = rng.normal(1.0, 1.0, n), rng.normal(0.6, 1.0, n)
    eff = stats.paired_effect(stats.paired_differences(treated, control), level)
    d = treated - control
    lo, hi = sps.t.interval(level, n - 1, loc=d.mean(), scale=sps.sem(d))
    assert eff.lo == pytest.approx(lo, rel=1e-10) and eff.hi == pytest.approx(hi, rel=1e-10)
    assert eff.p_value == pytest.approx(sps.ttest_rel(treated, control).pvalue, rel=1e-10)
    assert eff.mean == pytest.approx(d.mean(), rel=1e-12)


def test_one_seed_has_no_interval() -> None:
    eff = stats.paired_effect([0.3])
    assert eff.mean == 0.3 and eff.n == 1
    assert all(math.isnan(x) for x in (eff.lo, eff.hi, eff.sd, eff.p_value, eff.half_width))


def test_identical_differences() -> None:
    eff = stats.paired_effect([0.5, 0.5, 0.5])
    assert eff.ci == (0.5, 0.5) and eff.p_value == 0.0
    assert stats.paired_effect([0.0, 0.0]).p_value == 1.0


def test_paired_differences_keep_seed_order() -> None:
    d = stats.paired_differences([3.0, 5.0, 4.0], [1.0, 1.0, 2.0])
    assert d.tolist() == [2.0, 4.0, 2.0]


@pytest.mark.parametrize(
    "treated,control,message",
    [
        ([1.0, 2.0], [1.0], "one per seed"),
        ([1.0, float("nan")], [1.0, 2.0], "non-finite"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
    ],
)
def test_paired_differences_refuse_bad_input(treated, control, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stats.paired_differences(treated, control)


def test_paired_effect_refuses_no_seeds() -> None:
    with pytest.raises(ValueError, match="at least one seed"):
        stats.paired_effect([])


def test_t_quantile() -> None:
    assert stats.t_quantile(0.95, 3) == pytest.approx(T_975_2, rel=1e-12)
    assert math.isnan(stats.t_quantile(0.95, 1))
    with pytest.raises(ValueError, match="strictly between"):
        stats.t_quantile(1.0, 3)


# ---------------------------------------------------------------- outcome rule
@pytest.mark.parametrize(
    "lo,hi,predicted,margin,expected",
    [
        # predicted increase
        (0.1, 0.5, "increase", 0.05, AGREES),
        (-0.5, -0.1, "increase", 0.05, DISAGREES),  # other side
        (-0.02, 0.03, "increase", 0.05, DISAGREES),  # inside +-margin: too small to be the effect
        (0.01, 0.03, "increase", 0.05, DISAGREES),  # on the predicted side, but negligible
        (-0.1, 0.3, "increase", 0.05, INCONCLUSIVE),
        (-0.02, 0.03, "increase", 0.0, INCONCLUSIVE),  # no margin: equivalence never decides
        (0.0, 0.3, "increase", 0.0, INCONCLUSIVE),  # touching 0 is not clear of it
        # predicted decrease mirrors it
        (-0.5, -0.1, "decrease", 0.05, AGREES),
        (0.1, 0.5, "decrease", 0.05, DISAGREES),
        (-0.3, 0.1, "decrease", 0.05, INCONCLUSIVE),
        # predicted change of either sign
        (0.1, 0.5, "differs", 0.05, AGREES),
        (-0.5, -0.1, "differs", 0.05, AGREES),
        (-0.02, 0.03, "differs", 0.05, DISAGREES),
        (-0.1, 0.3, "differs", 0.05, INCONCLUSIVE),
        # predicted null (equivalence claim)
        (-0.02, 0.03, "none", 0.05, AGREES),
        (0.06, 0.2, "none", 0.05, DISAGREES),
        (-0.2, -0.06, "none", 0.05, DISAGREES),
        (0.01, 0.2, "none", 0.05, INCONCLUSIVE),  # significant, but not clearly beyond the margin
        (-0.1, 0.1, "none", 0.05, INCONCLUSIVE),
        # no interval
        (math.nan, math.nan, "increase", 0.05, INCONCLUSIVE),
        (math.nan, math.nan, "none", 0.05, INCONCLUSIVE),
    ],
)
def test_outcome_rule(lo: float, hi: float, predicted: str, margin: float, expected: str) -> None:
    assert stats.outcome(lo, hi, predicted, margin) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("predicted", ["increase", "decrease", "differs", "none"])
def test_regime_not_reached_overrides(predicted: str) -> None:
    assert stats.outcome(0.1, 0.5, predicted, 0.05, regime_reached=False) == REGIME_NOT_REACHED  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args,message",
    [
        ((0.0, 1.0, "up", 0.1), "predicted"),
        ((0.0, 1.0, "increase", -0.1), "margin"),
        ((0.0, 1.0, "increase", math.nan), "margin"),
        ((1.0, 0.0, "increase", 0.1), "lo > hi"),
    ],
)
def test_outcome_refuses_bad_input(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stats.outcome(*args)


# ---------------------------------------------------------------- regime gate
def test_regime_gate_is_paired_over_seeds() -> None:
    # the random encoder varies a lot between seeds, the trained one beats it by ~0.1 on every
    # seed: an unpaired comparison could not tell, the paired one can
    random = np.array([0.10, 0.40, 0.25, 0.55])
    encoder = random + np.array([0.11, 0.09, 0.10, 0.12])
    gate = stats.regime_gate(encoder, random)
    assert gate.mean == pytest.approx(0.105) and gate.level == 0.95
    assert stats.regime_reached(gate)
    assert sps.ttest_ind(encoder, random).pvalue > 0.05
    assert not stats.regime_reached(stats.regime_gate([0.3, 0.2, 0.35], [0.25, 0.3, 0.3]))
    assert not stats.regime_reached(stats.regime_gate([0.5], [0.1]))  # one seed: no interval


# ---------------------------------------------------------------- Holm
def test_holm_adjust_by_hand() -> None:
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1, carried max 0.06)
    adjusted = stats.holm_adjust([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(stats.holm_adjust([0.5, 0.9]), [1.0, 1.0])
    np.testing.assert_allclose(stats.holm_adjust([0.02, math.nan]), [0.04, 1.0])
    assert stats.holm_adjust([]).size == 0


def test_holm_levels_by_hand() -> None:
    # steps: 0.005 < 0.05/4 and 0.01 < 0.05/3 are rejected; 0.03 >= 0.05/2 stops the procedure,
    # so it and every later row keep the level of that step, 1 - 0.05/2
    levels = stats.holm_levels([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(levels, [1 - 0.05 / 3, 0.975, 0.975, 1 - 0.05 / 4], rtol=1e-12)
    # a failing first step fixes everyone at the Bonferroni level
    np.testing.assert_allclose(stats.holm_levels([0.02, 0.04, 0.3]), [1 - 0.05 / 3] * 3)
    # 0.001 < 0.05/3, 0.02 < 0.05/2, 0.3 >= 0.05
    np.testing.assert_allclose(stats.holm_levels([0.02, 0.001, 0.3]), [0.975, 1 - 0.05 / 3, 0.95])
    # all rejected: each row at its own step
    np.testing.assert_allclose(stats.holm_levels([0.001, 0.01]), [0.975, 0.95])
    np.testing.assert_allclose(stats.holm_levels([0.2]), [0.95])


def test_holm_levels_step_down_is_not_per_row() -> None:
    # 0.03 alone would pass its own step (< 0.05), but Holm stops at 0.025 before it
    levels = stats.holm_levels([0.026, 0.03])
    np.testing.assert_allclose(levels, [0.975, 0.975])
    assert (stats.holm_adjust([0.026, 0.03]) >= 0.05).all()


@pytest.mark.parametrize("seed", range(20))
def test_holm_intervals_agree_with_holm_adjusted_p(seed: int) -> None:
    """An interval at its Holm level excludes 0 exactly when the Holm-adjusted p is below 5%."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(3, 7)), int(rng.integers(1, 7))
    rows = [rng.normal(rng.uniform(-1.5, 1.5), 1.0, n) for _ in range(m)]
    p = [stats.paired_effect(d).p_value for d in rows]
    adjusted, levels = stats.holm_adjust(p), stats.holm_levels(p)
    for d, p_adj, level in zip(rows, adjusted, levels, strict=True):
        eff = stats.paired_effect(d, level)
        assert (eff.lo > 0 or eff.hi < 0) == (p_adj < 0.05)
