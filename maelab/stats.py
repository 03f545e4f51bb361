"""The study's statistics: paired differences over seeds, intervals, outcomes (pure functions).

Every verdict of the study is decided here, from per-seed numbers:

* a row's per-seed values are paired differences (same seed = same init, batches and masks);
* the interval is Student's t with n - 1 degrees of freedom around their mean;
* the outcome follows from where the interval lies relative to 0 and to +-margin;
* the prediction rows of one table share one family-wise error rate through Holm's step-down,
  applied as per-row confidence levels (`holm_levels`), so an interval excludes 0 exactly when
  Holm's procedure rejects that row's null hypothesis;
* a condition gets a verdict only when its trained encoder beats the same-seed random encoder
  (`regime_gate`);
* one checkpoint (n_seeds = 1) has no seeds to pair: its rows pair over images or positions and
  take a percentile bootstrap interval over them (`bootstrap_effect`, `BOOTSTRAP_CI_METHOD`).

docs/theory.md ("How verdicts are decided") states the same rules in words and holds the margins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

ALPHA = 0.05  # family-wise error rate of one table; 1 - ALPHA is the unadjusted CI level
LEVEL = 1.0 - ALPHA

Prediction = Literal["increase", "decrease", "differs", "none"]
PREDICTIONS: tuple[str, ...] = ("increase", "decrease", "differs", "none")

AGREES = "agrees"
DISAGREES = "disagrees"
INCONCLUSIVE = "inconclusive"
REGIME_NOT_REACHED = "regime not reached"
OUTCOMES: tuple[str, ...] = (AGREES, DISAGREES, INCONCLUSIVE, REGIME_NOT_REACHED)

CI_METHOD = (
    "paired differences over seeds; mean with a two-sided Student t interval (n - 1 df), "
    "95% for single rows and the regime gate; the prediction rows of one table at Holm-adjusted "
    "levels (family-wise 5%); min_detectable = the interval's half-width"
)


@dataclass(frozen=True)
class PairedEffect:
    """Mean of per-seed paired differences with its t interval.

    `lo`, `hi`, `half_width` and `p_value` are NaN when fewer than two seeds exist: one seed has
    no spread, so no interval can be given.
    """

    mean: float
    lo: float
    hi: float
    n: int
    sd: float  # sample standard deviation (ddof = 1)
    level: float  # confidence level of [lo, hi]
    p_value: float  # two-sided paired t-test of mean difference = 0

    @property
    def half_width(self) -> float:
        """t_{(1 + level) / 2, n - 1} * sd / sqrt(n): the smallest |mean| this row can detect."""
        return (self.hi - self.lo) / 2.0

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)


def paired_differences(treated: Sequence[float], control: Sequence[float]) -> np.ndarray:
    """treated - control per seed, both given in the same seed order."""
    a, b = _values(treated, "treated"), _values(control, "control")
    if a.shape != b.shape:
        raise ValueError(
            f"paired values need one per seed on both sides, got {a.size} and {b.size}"
        )
    return a - b


def t_quantile(level: float, n: int) -> float:
    """t_{(1 + level) / 2, n - 1}: the two-sided critical value for n paired values."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level {level} must lie strictly between 0 and 1")
    if n < 2:
        return math.nan
    return float(sps.t.ppf(0.5 + level / 2.0, n - 1))


def paired_effect(diffs: Sequence[float], level: float = LEVEL) -> PairedEffect:
    """Mean, Student t interval at `level` and paired t-test p-value of per-seed differences."""
    d = _values(diffs, "differences")
    n = int(d.size)
    if n == 0:
        raise ValueError("no per-seed values: a row needs at least one seed")
    mean = float(d.mean())
    if n < 2:
        return PairedEffect(mean, math.nan, math.nan, n, math.nan, level, math.nan)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = t_quantile(level, n) * se
    return PairedEffect(mean, mean - half, mean + half, n, sd, level, _t_test_p(mean, se, n))


def min_detectable(diffs: Sequence[float], level: float = LEVEL) -> float:
    """The interval half-width t_{(1 + level) / 2, n - 1} * sd / sqrt(n) with the sd observed.

    A mean of at least this size (in either direction) puts the interval clear of 0.
    """
    return paired_effect(diffs, level).half_width


def _t_test_p(mean: float, se: float, n: int) -> float:
    if se == 0.0:  # identical differences: no spread, the sign of the mean decides
        return 0.0 if mean != 0.0 else 1.0
    return float(2.0 * sps.t.sf(abs(mean / se), n - 1))


# ---------------------------------------------------------------- outcomes
def outcome(
    lo: float,
    hi: float,
    predicted: Prediction,
    margin: float,
    regime_reached: bool = True,
) -> str:
    """The verdict for an interval [lo, hi] of the measured effect.

    predicted "increase" / "decrease" (an effect): agrees when the interval lies entirely on the
    predicted side of 0; disagrees when it lies entirely on the other side, or entirely inside
    (-margin, +margin) (equivalence: the effect, whatever its sign, is smaller than the smallest
    effect the claim is about; this is checked first); else inconclusive.
    predicted "differs" (an effect of either sign): agrees when the interval excludes 0,
    disagrees when it lies inside (-margin, +margin) (checked first); else inconclusive.
    predicted "none" (a null): agrees when the interval lies inside (-margin, +margin); disagrees
    when it lies entirely beyond +margin or entirely below -margin; else inconclusive.
    A condition whose encoder did not pass the regime gate gets "regime not reached".
    """
    if predicted not in PREDICTIONS:
        raise ValueError(f"predicted={predicted!r}: expected one of {', '.join(PREDICTIONS)}")
    if not margin >= 0.0:
        raise ValueError(f"margin={margin}: must be a number >= 0")
    if not regime_reached:
        return REGIME_NOT_REACHED
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if lo > hi:
        raise ValueError(f"interval [{lo}, {hi}] has lo > hi")
    inside = -margin < lo and hi < margin
    if predicted == "none":
        if inside:
            return AGREES
        return DISAGREES if lo > margin or hi < -margin else INCONCLUSIVE
    if inside:
        return DISAGREES
    if predicted == "differs":
        return AGREES if lo > 0.0 or hi < 0.0 else INCONCLUSIVE
    sign = 1.0 if predicted == "increase" else -1.0
    near, far = sorted((sign * lo, sign * hi))  # the interval in the predicted direction
    if near > 0.0:
        return AGREES
    if far < 0.0:
        return DISAGREES
    return INCONCLUSIVE


# ---------------------------------------------------------------- regime gate
def regime_gate(encoder: Sequence[float], random: Sequence[float]) -> PairedEffect:
    """Trained minus same-seed random encoder on the claim's readout, 95% t interval."""
    return paired_effect(paired_differences(encoder, random), LEVEL)


def regime_reached(gate: PairedEffect) -> bool:
    """The regime is reached when the gate's interval lies above 0."""
    return math.isfinite(gate.lo) and gate.lo > 0.0


# ---------------------------------------------------------------- multiple rows
def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sorted ascending, p_(k) becomes max_{j <= k} min(1, (m - j + 1) p_(j)). NaN (a row without an
    interval) counts as 1: it stays in the family but is never rejected.
    """
    p = _p_array(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def holm_levels(p_values: Sequence[float], alpha: float = ALPHA) -> np.ndarray:
    """Per-row confidence levels that make t intervals agree with Holm's step-down test.

    The row of rank k (ascending p) gets 1 - alpha / (m - k + 1) while every row ranked before it
    was rejected; from the first row that is not rejected (rank k*) on, every row gets the level
    of step k*. An interval at its level then excludes 0 exactly when the Holm-adjusted p-value
    is below alpha.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha} must lie strictly between 0 and 1")
    p = _p_array(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    levels = np.empty(m)
    step_alpha = alpha
    stopped = False
    for k, row in enumerate(order):
        if not stopped:
            step_alpha = alpha / (m - k)
            stopped = not p[row] < step_alpha
        levels[row] = 1.0 - step_alpha
    return levels


def _p_array(p_values: Sequence[float]) -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    return np.where(np.isnan(p), 1.0, p)


def _values(values: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected one value per seed (1-D), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(
            f"{name}: non-finite per-seed value in {a.tolist()}; fix or drop that seed"
        )
    return a


# ---------------------------------------------------------------- one value against an exact answer
EXACT_METHOD = (
    "one measurement against an exact answer (calibration): effect = measured - exact, no "
    "interval (the interval is the point); the row agrees when |effect| is within its margin, "
    "the tolerance fixed before the run"
)


def exact_effect(values: Sequence[float], level: float = 0.95) -> PairedEffect:
    """The effect of one deviation from an exact answer: the point is its own interval."""
    v = _values(values, "values")
    if v.size != 1:
        raise ValueError(f"an exact comparison holds one value, got {v.size}")
    x = float(v[0])
    return PairedEffect(x, x, x, 1, 0.0, level, math.nan)


# ---------------------------------------------------------------- one checkpoint: bootstrap
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same differences always give the same interval

BOOTSTRAP_CI_METHOD = (
    "one checkpoint (n_seeds = 1: seed-to-seed variation is not in the interval); paired "
    "differences over images (or positions) of that checkpoint; mean with a percentile bootstrap "
    f"interval over those units ({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}), 95% for "
    "single rows; the prediction rows at Holm-adjusted levels from bootstrap p-values "
    "(family-wise 5%); min_detectable = the interval's half-width"
)


def bootstrap_means(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """Means of `resamples` draws of len(values) units with replacement, (resamples,) float64."""
    v = _values(values, "values")
    if v.size == 0 or resamples < 1:
        raise ValueError(f"bootstrap needs >= 1 value and >= 1 resample ({v.size}, {resamples})")
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    step = max(1, 4_000_000 // v.size)  # resamples per chunk: a few MB of indices at a time
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        out[start:stop] = v[rng.integers(0, v.size, size=(stop - start, v.size))].mean(axis=1)
    return out


def bootstrap_effect(
    diffs: Sequence[float],
    level: float = LEVEL,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> PairedEffect:
    """Mean of per-unit paired differences with a percentile bootstrap interval at `level`.

    The p-value is two-sided, 2 * min(P*(mean* <= 0), P*(mean* >= 0)) over the resampled means
    (capped at 1). The bounds are order statistics of the resampled means chosen so that the
    interval excludes 0 exactly when p < 1 - level, which keeps Holm's levels and p-values in
    step as they are for the t interval.
    """
    d = _values(diffs, "differences")
    n = int(d.size)
    if n == 0:
        raise ValueError("no paired values: a row needs at least one unit")
    mean = float(d.mean())
    if n < 2:
        return PairedEffect(mean, math.nan, math.nan, n, math.nan, level, math.nan)
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level {level} must lie strictly between 0 and 1")
    means = bootstrap_means(d, resamples, seed)
    tail = (1.0 - level) / 2.0
    lo = float(np.quantile(means, tail, method="inverted_cdf"))
    hi = float(-np.quantile(-means, tail, method="inverted_cdf"))
    p = min(1.0, 2.0 * min(float(np.mean(means <= 0.0)), float(np.mean(means >= 0.0))))
    # a percentile interval of a very skewed sample can miss its own mean; the stored interval
    # always holds the effect it reports
    return PairedEffect(mean, min(lo, mean), max(hi, mean), n, float(d.std(ddof=1)), level, p)
