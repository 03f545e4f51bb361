"""The calibration's rows: a treated measurement beside the exact answer, judged by one rule.

Every check is ``|treated - expected| <= tolerance``; each row states how its tolerance was
fixed, and every tolerance that compares a curve is a fraction of the optimum's spread across
the row's conditions, below one half, so that a flat curve fails. Pure functions: the numbers
come in, typed rows go out (maelab.experiments.calibration measures them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from maelab.data.gaussian import CELL_NOISE, REGION_NOISE
from maelab.theory.kong import CELL_UNITS, PATCH, REGION, REGION_UNITS

# the rows' names (stable: a later verdicts.json keys calibration rows by them)
TRAINER, BISULCO_FULL, BISULCO_K, KONG, VIT_BOUND = (
    "trainer-finds-optimum", "bisulco-reach-full-rank", "bisulco-reach-k", "kong-shares",
    "vit-reaches-bound",
)  # fmt: skip


@dataclass(frozen=True)
class CalibrationCheck:
    """One measured point beside its exact answer."""

    condition: str  # e.g. "patch 2, ratio 0.75"
    quantity: str  # e.g. "exact loss", "reach (px)", "e_r share"
    treated: float  # measured on the trained model
    expected: float  # the exact optimum's value
    tolerance: float  # the largest |treated - expected| that passes
    note: str = ""

    @property
    def passed(self) -> bool:
        return abs(self.treated - self.expected) <= self.tolerance


@dataclass(frozen=True)
class CalibrationRow:
    """A claim about the instrument, its checks, and how the tolerance was fixed."""

    name: str
    claim: str
    tolerance_rule: str
    spread: float  # the expected values' range across the row's conditions (0: one condition)
    checks: tuple[CalibrationCheck, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[CalibrationCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)


def spread(values: Sequence[float]) -> float:
    return float(max(values) - min(values)) if values else 0.0


def curve_row(
    name: str, claim: str, quantity: str, treated: Mapping[str, float],
    expected: Mapping[str, float], fraction: float, notes: Sequence[str] = (),
) -> CalibrationRow:  # fmt: skip
    """Treated vs expected over conditions, tolerance ``fraction`` x the expected spread."""
    if not 0 < fraction < 0.5:
        raise ValueError(f"fraction={fraction}: a flat curve must fail (0 < fraction < 0.5)")
    width = spread(list(expected.values()))
    tol = fraction * width
    checks = tuple(
        CalibrationCheck(cond, quantity, float(treated[cond]), float(expected[cond]), tol)
        for cond in expected
    )
    rule = f"{fraction:.0%} of the optimum's spread across conditions ({width:.4g})"
    return CalibrationRow(name, claim, rule, width, checks, tuple(notes))


def trainer_row(
    losses: Mapping[str, float], optimal: Mapping[str, float], relative: float,
    angles: Mapping[str, float | None], gaps: Mapping[str, float], max_angle: float,
    min_gap: float,
) -> CalibrationRow:  # fmt: skip
    """The trained linear MAE's exact loss within ``relative`` of the optimum, and its code's
    largest principal angle to the optimum's below ``max_angle`` degrees where the optimum's
    eigengap at k is at least ``min_gap`` (elsewhere the code is not unique: not compared)."""
    checks = []
    for cond, opt in optimal.items():
        checks.append(CalibrationCheck(cond, "exact loss", losses[cond], opt, relative * opt))
        angle = angles.get(cond)
        if angle is not None and gaps[cond] >= min_gap:
            note = f"eigengap {gaps[cond]:.2f}"
            checks.append(CalibrationCheck(cond, "code angle (deg)", angle, 0.0, max_angle, note))
    width = spread(list(optimal.values()))
    rule = (
        f"loss: {relative:.0%} of the optimum ({relative * min(optimal.values()):.3g}-"
        f"{relative * max(optimal.values()):.3g}; the optimum's spread is {width:.3g}); "
        f"angle: {max_angle:g} deg where the eigengap is >= {min_gap:g}"
    )
    claim = "the engine trains the linear MAE to the exact optimum of maelab's masked loss"
    return CalibrationRow(TRAINER, claim, rule, width, tuple(checks))


def bound_row(
    heldout: float, stderr: float, bound: float, trivial: float, fraction: float,
    steps: int, leak_se: float = 3.0, notes: Sequence[str] = (),
) -> CalibrationRow:  # fmt: skip
    """The ViT's held-out loss: not below the Bayes bound (beyond ``leak_se`` standard errors:
    a loss below it is a leak), and within ``fraction`` of the way from the bound to the
    trivial predictor's loss (predicting zero)."""
    width = trivial - bound
    cond = f"{steps} steps"
    leak = CalibrationCheck(
        cond, "held-out loss >= bound", min(heldout, bound), bound, leak_se * stderr,
        f"held-out {heldout:.4f} +- {stderr:.4f}, bound {bound:.4f}",
    )  # fmt: skip
    gap = CalibrationCheck(
        cond, "held-out loss", max(heldout, bound), bound, fraction * width,
        f"gap {100 * (heldout / bound - 1):.1f}% of the bound",
    )  # fmt: skip
    rule = (
        f"below the bound by at most {leak_se:g} standard errors; above it by at most "
        f"{fraction:.0%} of the spread from the bound to the trivial predictor ({width:.3g})"
    )
    claim = "the micro ViT MAE approaches the Bayes bound and never beats it"
    return CalibrationRow(VIT_BOUND, claim, rule, width, (leak, gap), tuple(notes))


def kong_row(
    world: str, treated: Mapping[str, Mapping[str, float]],
    expected: Mapping[str, Mapping[str, float]], fraction: float, notes: Sequence[str] = (),
) -> CalibrationRow:  # fmt: skip
    """A trained code's e_r share under region / patch / straddled units and e_c share under
    cell / patch units (unit -> {level: share}) against the exact optimum's, and Kong's
    contrast (e_r under patch minus under region units); tolerances are ``fraction`` of each
    latent's spread across units."""
    checks = []
    widths = {}
    for level, units, name in (
        (REGION_NOISE, REGION_UNITS, "e_r"),
        (CELL_NOISE, CELL_UNITS, "e_c"),
    ):
        width = spread([expected[u][level] for u in units])
        widths[name] = width
        for u in units:
            checks.append(
                CalibrationCheck(f"{world}, {u} units", f"{name} share", treated[u][level],
                                 expected[u][level], fraction * width)
            )  # fmt: skip
    contrast = {
        side: shares[PATCH][REGION_NOISE] - shares[REGION][REGION_NOISE]
        for side, shares in (("treated", treated), ("expected", expected))
    }
    order = "holds" if contrast["expected"] > 0 else "reverses"
    checks.append(
        CalibrationCheck(f"{world}: Kong's order {order}", "e_r patch - region", contrast["treated"],
                         contrast["expected"], fraction * widths["e_r"])
    )  # fmt: skip
    rule = (
        f"{fraction:.0%} of the optimum's spread across units (e_r {widths['e_r']:.3g}, "
        f"e_c {widths['e_c']:.3g})"
    )
    claim = f"the trained code keeps e_r and e_c as the exact optimum does ({world})"
    return CalibrationRow(
        f"{KONG}/{world}", claim, rule, widths["e_r"], tuple(checks), tuple(notes)
    )
