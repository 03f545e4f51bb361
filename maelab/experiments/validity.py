"""The three validity conditions of a decided study (docs/theory.md, "How verdicts are
decided"), checked on a `verdicts.json`: no row that asserts an effect has a placebo asserting
the same effect; every row that asserts an absence (or disagrees) has a detected positive
control; every counted row's conditions converged against their pilots. `maelab demo` prints
what fails; `tests/experiments/test_validity.py` checks the demo's output."""

from __future__ import annotations

from maelab import verdicts as vd
from maelab.verdicts import asserts, placebo_same, unseen


def validity_problems(record: vd.Verdicts) -> list[str]:
    """One line per prediction row that breaks a validity condition (empty: all hold)."""
    problems = []
    converged = {r.condition.split(" · ")[0]: r.converged for r in record.regime
                 if r.convergence is not None}  # fmt: skip
    for v in record.verdicts:
        if v.kind != vd.PREDICTION:
            continue
        predicted, margin = v.predicted or "none", v.margin or 0.0
        claim = asserts(v.outcome, predicted, *v.ci, margin)
        if claim is None:
            continue
        if v.placebo is None:
            problems.append(f"{v.claim}: decided without a placebo")
        elif placebo_same(claim, v.outcome, predicted, margin, v.placebo):
            problems.append(f"{v.claim}: its placebo asserts the same effect")
        if unseen(claim, v.outcome, v.positive_control):
            problems.append(f"{v.claim}: asserts {claim} without a detected positive control")
        unconverged = [c for c in v.conditions or () if converged.get(c) is not True]
        if v.conditions is None or unconverged:
            problems.append(f"{v.claim}: counts conditions not known to have converged "
                            f"({', '.join(unconverged) or 'conditions not stored'})")  # fmt: skip
    return problems
