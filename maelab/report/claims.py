"""The papers' predictions as computed checks: numbers in, a verdict out (pure functions).

Each check states the prediction, describes what we measured (with the numbers) and says whether
they agree: True / False, or None when the runs needed for the check are missing. Thresholds are
named constants here so that the report can quote them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KONG = "Kong et al. 2023"
ZHANG = "Zhang, Wang, Wang 2022"
CAO = "Cao, Xu, Clifton 2022"

CONTROL_TOLERANCE = 0.05  # |R^2| of the control latent (independent of the image) must stay below
STABLE_UPDATE = 1.0  # a block is "stable" when ||x_{l+1} - x_l|| / ||x_l|| stays below this
STABLE_CKA = 0.5  # ... and linear CKA between adjacent layers stays above this
COORDINATE_R2 = 0.5  # positions still readable from the last layer's tokens
SIGNIFICANT_SE = 2.0  # an effect counts when it exceeds this many standard errors


@dataclass(frozen=True)
class Verdict:
    source: str  # the paper
    claim: str  # its prediction, in words
    measured: str  # what we measured, with numbers
    agrees: bool | None  # None: not enough runs to check
    # a row decided by an interval (maelab.verdicts): its outcome, e.g. "inconclusive", which
    # was measured although it neither agrees nor disagrees
    outcome: str | None = None

    @property
    def mark(self) -> str:
        if self.outcome is not None:
            return self.outcome
        return {True: "agrees", False: "disagrees", None: "not measured"}[self.agrees]


Series = Mapping[float, tuple[float, float]]  # x -> (mean, std)


def _fmt(mean: float, std: float | None = None, digits: int = 2) -> str:
    if std is None or not math.isfinite(std) or std == 0:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}±{std:.{digits}f}"


def _series_text(series: Series, digits: int = 2) -> str:
    return ", ".join(f"{x:g}: {_fmt(m, s, digits)}" for x, (m, s) in sorted(series.items()))


def argmax_x(series: Series) -> float:
    """The x with the largest finite mean."""
    finite = {x: m for x, (m, _) in series.items() if math.isfinite(m)}
    if not finite:
        raise ValueError("no finite values")
    return max(finite, key=lambda x: finite[x])


def peaks_inside(series: Series) -> bool | None:
    """True when the maximum lies strictly between the smallest and the largest x (>= 3 xs)."""
    finite = {x: v for x, v in series.items() if math.isfinite(v[0])}
    if len(finite) < 3:
        return None
    best = argmax_x(finite)
    return min(finite) < best < max(finite)


# ---------------------------------------------------------------- Kong et al.
def kong_peak(series_by_unit: Mapping[Any, Series], metric_label: str, what: str) -> Verdict:
    """'`what` peaks at an intermediate mask ratio', checked for every mask unit."""
    parts, verdicts = [], []
    for unit, series in series_by_unit.items():
        ok = peaks_inside(series)
        if ok is None:
            continue
        verdicts.append(ok)
        parts.append(
            f"unit {unit:g}: peak at ratio {argmax_x(series):g} ({metric_label} {_series_text(series)})"
        )
    agrees = None if not verdicts else all(verdicts)
    measured = "; ".join(parts) if parts else "needs at least 3 mask ratios"
    if any(_peak_within_noise(series) for series in series_by_unit.values()):
        measured += " (the peak is within a seed std of an endpoint)"
    return Verdict(KONG, f"{what} peaks at an intermediate mask ratio", measured, agrees)


def _peak_within_noise(series: Series) -> bool:
    """True when the best endpoint lies within the seed std of the interior peak."""
    finite = {x: v for x, v in series.items() if math.isfinite(v[0])}
    if len(finite) < 3:
        return False
    peak = argmax_x(finite)
    ends = [finite[min(finite)], finite[max(finite)]]
    noise = max((s for _, s in [finite[peak], *ends] if math.isfinite(s)), default=0.0)
    return finite[peak][0] - max(m for m, _ in ends) <= noise


def kong_low_level_extremes(
    global_by_unit: Mapping[Any, Series], cell_by_unit: Mapping[Any, Series]
) -> Verdict:
    """'Very small and very large ratios give low-level representations': the lean towards the
    local level, R^2(cell) - R^2(global), is larger at both extreme ratios than at the ratio
    where R^2(global) peaks."""
    parts, verdicts = [], []
    for unit, g in global_by_unit.items():
        c = cell_by_unit.get(unit, {})
        xs = sorted(x for x in g if x in c and math.isfinite(g[x][0]) and math.isfinite(c[x][0]))
        if len(xs) < 3:
            continue
        lean = {x: c[x][0] - g[x][0] for x in xs}
        peak = argmax_x({x: g[x] for x in xs})
        if peak in (xs[0], xs[-1]):
            ok = False
        else:
            ok = lean[xs[0]] > lean[peak] and lean[xs[-1]] > lean[peak]
        verdicts.append(ok)
        noise = max(
            (v[1] for x in (xs[0], peak, xs[-1]) for v in (g[x], c[x]) if math.isfinite(v[1])),
            default=0.0,
        )
        close = min(lean[xs[0]], lean[xs[-1]]) - lean[peak] <= noise
        parts.append(
            ("(within a seed std) " if ok and close else "")
            + f"unit {unit:g}: R2(cell) - R2(global) = "
            + ", ".join(f"{x:g}: {lean[x]:+.2f}" for x in xs)
            + f" (global peak at {peak:g})"
        )
    return Verdict(
        KONG,
        "very small and very large mask ratios lean to low-level (local) latents",
        "; ".join(parts) if parts else "needs at least 3 mask ratios",
        None if not verdicts else all(verdicts),
    )


def kong_unit(series_by_unit: Mapping[Any, Series], metric_label: str, what: str) -> Verdict:
    """'A larger mask unit gives a higher-level representation': `what`, averaged over the
    ratios every unit shares, grows with the unit."""
    units = sorted(series_by_unit, key=float)
    if len(units) < 2:
        return Verdict(
            KONG, f"a larger mask unit raises {what}", "needs at least 2 mask units", None
        )
    shared = set.intersection(*(set(series_by_unit[u]) for u in units))
    shared = {x for x in shared if all(math.isfinite(series_by_unit[u][x][0]) for u in units)}
    if not shared:
        return Verdict(
            KONG, f"a larger mask unit raises {what}", "no ratio shared by the units", None
        )
    means = {u: sum(series_by_unit[u][x][0] for x in shared) / len(shared) for u in units}
    spread = {u: _mean_std(series_by_unit[u][x][1] for x in shared) for u in units}
    ok = all(means[a] < means[b] for a, b in zip(units, units[1:], strict=False))
    measured = f"{metric_label} averaged over ratios {sorted(shared)}: " + ", ".join(
        f"unit {u:g}: {means[u]:.3f}" for u in units
    )
    if any(
        abs(means[b] - means[a]) <= max(spread[a], spread[b])
        for a, b in zip(units, units[1:], strict=False)
    ):
        measured += " (difference within the seed std)"
    return Verdict(KONG, f"a larger mask unit raises {what}", measured, ok)


def _mean_std(stds: Iterable[float]) -> float:
    """Mean of the finite seed stds (0 when there are none: one seed)."""
    xs = [s for s in stds if math.isfinite(s)]
    return sum(xs) / len(xs) if xs else 0.0


def control_sanity(values: Mapping[str, float]) -> Verdict:
    """The control latent is independent of the image: every probe must read R^2 ~ 0."""
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    if not finite:
        return Verdict("probe check", "R2 of the control latent is ~0", "not measured", None)
    worst = max(finite, key=lambda k: abs(finite[k]))
    ok = abs(finite[worst]) < CONTROL_TOLERANCE
    return Verdict(
        "probe check",
        f"the control latent (independent of the image) reads |R2| < {CONTROL_TOLERANCE}",
        f"largest |R2| {abs(finite[worst]):.3f} ({worst})",
        ok,
    )


# ---------------------------------------------------------------- Zhang et al.
def zhang_collapse(mae_rank: tuple[float, float], random_rank: float, dim: int) -> Verdict:
    """'MAE suffers dimensional collapse': training lowers the effective rank of the features
    below that of the same encoder at initialisation."""
    if not (math.isfinite(mae_rank[0]) and math.isfinite(random_rank)):
        return Verdict(ZHANG, "MAE features collapse to fewer dimensions", "not measured", None)
    return Verdict(
        ZHANG,
        "MAE features collapse to fewer dimensions (effective rank falls with training)",
        f"effective rank {_fmt(*mae_rank, digits=1)} of {dim} after MAE vs "
        f"{random_rank:.1f} at initialisation",
        mae_rank[0] < random_rank,
    )


def zhang_umae(
    metric: str, label: str, mae: tuple[float, float], umae: tuple[float, float], higher_is: str
) -> Verdict:
    """U-MAE vs MAE on one metric at equal budgets; `higher_is` 'better' or 'worse'."""
    claims = {
        "effective_rank": "U-MAE raises the effective rank (less collapse)",
        "rankme": "U-MAE raises RankMe",
        "uniformity": "U-MAE makes features more uniform (lower uniformity loss)",
        "linear_top1": "U-MAE improves the linear probe",
        "knn_top1": "U-MAE improves k-NN accuracy",
    }
    claim = claims.get(metric, f"U-MAE improves {label}")
    if not (math.isfinite(mae[0]) and math.isfinite(umae[0])):
        return Verdict(ZHANG, claim, "not measured", None)
    digits = 1 if abs(mae[0]) >= 10 else 3
    better = umae[0] > mae[0] if higher_is == "better" else umae[0] < mae[0]
    measured = f"{label}: MAE {_fmt(*mae, digits=digits)} -> U-MAE {_fmt(*umae, digits=digits)}"
    noise = max((s for s in (mae[1], umae[1]) if math.isfinite(s)), default=0.0)
    if abs(umae[0] - mae[0]) <= noise:
        measured += " (difference within the seed std)"
    return Verdict(ZHANG, claim, measured, better)


# ---------------------------------------------------------------- Cao et al.
def cao_q1(position: Mapping[str, Any] | None) -> Verdict:
    claim = "Q1: positional embeddings act as coordinates (similarity falls with distance; positions stay readable)"
    if not position:
        return Verdict(CAO, claim, "not measured", None)
    rho = float(position["similarity_spearman"])
    r2s = [float(v) for v in position["coordinate_r2"]]
    ok = rho < 0 and r2s[-1] > COORDINATE_R2
    measured = (
        f"Spearman rho(similarity, distance) = {rho:.2f}; coordinate R2 per layer "
        + ", ".join(f"{v:.2f}" for v in r2s)
        + f" (last > {COORDINATE_R2} needed)"
    )
    if not position.get("learnable_pos_embed", False):
        measured += "; fixed sin-cos embeddings, so the similarity part holds by construction"
    return Verdict(CAO, claim, measured, ok)


def cao_q2(low_rank: Mapping[str, Any] | None) -> Verdict:
    claim = "Q2: patchified images are low-rank, and lower-rank images are easier to reconstruct"
    if not low_rank:
        return Verdict(CAO, claim, "not measured", None)
    rho, p = float(low_rank["spearman_rho"]), float(low_rank["spearman_p"])
    rel = {int(k): float(v) for k, v in low_rank["relative_effective_rank"].items()}
    rel_text = ", ".join(f"patch {k}: {v:.2f}" for k, v in sorted(rel.items()))
    measured = (
        f"effective rank / max rank of the patch matrix ({rel_text}); Spearman rho(image "
        f"rank, masked error) = {rho:.2f} (p = {p:.2g})"
    )
    return Verdict(CAO, claim, measured, rho > 0 and p < 0.05)


def cao_q3(stability: Mapping[str, Any] | None) -> Verdict:
    claim = (
        "Q3: representations stay stable from layer to layer (small relative updates after the "
        "first block, high CKA between adjacent layers)"
    )
    if not stability:
        return Verdict(CAO, claim, "not measured", None)
    upd = [float(v) for v in stability["block_update"]]
    cka = [float(v) for v in stability["adjacent_cka"]]
    # the first block acts on the raw patch embedding, which it is expected to rewrite
    later = upd[1:] or upd
    ok = max(later) < STABLE_UPDATE and min(cka) > STABLE_CKA
    measured = (
        "relative update per block "
        + ", ".join(f"{v:.2f}" for v in upd)
        + "; adjacent CKA "
        + ", ".join(f"{v:.2f}" for v in cka)
        + f" (stable: update < {STABLE_UPDATE} after block 1, CKA > {STABLE_CKA})"
    )
    return Verdict(CAO, claim, measured, ok)


def cao_q4(by_depth: Series, metric_label: str) -> Verdict:
    """'The decoder matters for the encoder': changing decoder depth moves the probe by more than
    the seed spread."""
    claim = "Q4: the decoder's design changes the encoder's representation"
    finite = {d: v for d, v in by_depth.items() if math.isfinite(v[0])}
    if len(finite) < 2:
        return Verdict(CAO, claim, "needs runs with at least 2 decoder depths", None)
    means = [m for m, _ in finite.values()]
    stds = [s for _, s in finite.values() if math.isfinite(s)]
    spread = max(means) - min(means)
    noise = max(stds) if stds else 0.0
    ok = spread > SIGNIFICANT_SE * noise if noise > 0 else None
    measured = (
        f"{metric_label} by decoder depth {_series_text(finite, 1)}; range {spread:.1f} vs seed "
        f"std {noise:.1f}"
    )
    if ok is None:
        measured += " (one seed: no spread to compare with)"
    return Verdict(CAO, claim, measured, ok)


def cao_q5(interp: Mapping[str, Any] | None) -> Verdict:
    """Global, not neighbour-only, interpolation: the decoder's masked queries do not concentrate
    their attention on the 8 nearest patches (share < 2x uniform), and knocking out the nearest
    visible patches hurts no more than knocking out as many far ones (paired near - far within
    2 standard errors). The paired difference is used because both knock-outs also change the
    number of visible patches, which moves the error by itself."""
    claim = "Q5: masked patches are filled by global interpolation, not from neighbours only"
    if not interp:
        return Verdict(CAO, claim, "not measured", None)
    att, ko = interp["attention"], interp["knockout"]
    near, far = float(ko["near_increase"]), float(ko["far_increase"])
    diff = float(ko.get("near_minus_far", near - far))
    diff_se = float(
        ko.get("near_minus_far_se", math.hypot(ko["near_increase_se"], ko["far_increase_se"]))
    )
    spread = float(att["near_share"]) < 2.0 * float(att["uniform_near_share"])
    not_local = diff <= SIGNIFICANT_SE * diff_se
    measured = (
        f"decoder attention: mean distance {att['mean_distance']:.2f} (uniform "
        f"{att['uniform_distance']:.2f}), share on 8 nearest {att['near_share']:.2f} (uniform "
        f"{att['uniform_near_share']:.2f}); knocking out {ko['num_knocked']} visible patches "
        f"changes the error by {near:+.3f} (nearest) and {far:+.3f} (farthest): near - far = "
        f"{diff:+.3f}±{diff_se:.3f}"
    )
    return Verdict(CAO, claim, measured, spread and not_local)


def summarise(verdicts: Sequence[Verdict]) -> dict[str, int]:
    out = {"agrees": 0, "disagrees": 0, "not measured": 0}
    for v in verdicts:
        out[v.mark] = out.get(v.mark, 0) + 1  # decided rows add "inconclusive", ...
    return out
