"""The bootstrap interval of one checkpoint's per-image differences (maelab.stats)."""

import numpy as np
import pytest
from scipy import stats as sps

from maelab import stats
from maelab import verdicts as vd


def test_bootstrap_matches_scipy_percentile_interval():
    d = np.random.default_rng(3).normal(0.3, 1.0, 80)
    eff = stats.bootstrap_effect(d, level=0.95)
    ref = sps.bootstrap((d,), np.mean, method="percentile", n_resamples=20_000,
                        random_state=1).confidence_interval  # fmt: skip
    assert eff.mean == pytest.approx(d.mean())
    assert eff.lo == pytest.approx(ref.low, abs=0.02) and eff.hi == pytest.approx(
        ref.high, abs=0.02
    )
    # the bootstrap of a mean is close to the normal interval at this size
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert eff.half_width == pytest.approx(half, rel=0.1)


@pytest.mark.parametrize("shift", [-0.4, -0.2, -0.05, 0.0, 0.05, 0.2, 0.4])
@pytest.mark.parametrize("level", [0.95, 0.99, 0.9875])
def test_interval_excludes_zero_exactly_when_p_is_small(shift, level):
    d = np.random.default_rng(7).normal(shift, 1.0, 50)
    eff = stats.bootstrap_effect(d, level=level, resamples=4000)
    assert (eff.lo > 0 or eff.hi < 0) == (eff.p_value < 1 - level)
    assert eff.lo <= eff.mean <= eff.hi


def test_degenerate_and_single_values():
    same = stats.bootstrap_effect([0.5] * 10)
    assert same.lo == same.hi == 0.5 and same.p_value == 0.0
    zero = stats.bootstrap_effect([0.0] * 10)
    assert zero.p_value == 1.0
    one = stats.bootstrap_effect([1.0])
    assert one.n == 1 and np.isnan(one.lo) and np.isnan(one.p_value)
    with pytest.raises(ValueError):
        stats.bootstrap_effect([])


def test_same_values_same_interval_and_decide_table_uses_it():
    d = list(np.random.default_rng(0).normal(1.0, 1.0, 40))
    a, b = stats.bootstrap_effect(d), stats.bootstrap_effect(d)
    assert (a.lo, a.hi, a.p_value) == (b.lo, b.hi, b.p_value)
    rows = [vd.Row("Cao", "Q1: x", "increase", 0.1, d), vd.Row("Cao", "Q2: y", "none", 0.5,
            list(np.random.default_rng(1).normal(0.0, 0.1, 40)))]  # fmt: skip
    boot = vd.decide_table(rows, sampling=vd.OVER_IMAGES)
    t = vd.decide_table(rows)
    # the null agrees by its interval but has no positive control: it asserts no absence
    assert [v.outcome for v in boot] == ["agrees", "inconclusive"]
    assert boot[1].reason == vd.UNSEEN
    assert boot[0].ci != t[0].ci and boot[0].effect == t[0].effect
    # one checkpoint: the file keeps the mean, the per-image values stay in the question's file
    assert boot[0].n_seeds == 1 and boot[0].per_seed == (boot[0].effect,) and t[0].n_seeds == 40
    # Holm: the interval at the row's level excludes 0 exactly when p_holm < 0.05
    for v in boot:
        assert (v.ci[0] > 0 or v.ci[1] < 0) == (v.p_holm < 0.05)
