"""The three validity conditions (maelab.experiments.validity) on verdict files: rows broken by
hand are caught, and the demo's own output (the file the measured `make demo` wrote, kept in
docs/results/) holds all three."""

from __future__ import annotations

import copy
from pathlib import Path

from maelab import verdicts as vd
from maelab.experiments.validity import validity_problems

DEMO = Path(__file__).resolve().parents[2] / "docs" / "results" / "demo_verdicts.json"
CONDITIONS = ("region", "patch")


def record(rows: list[vd.Row], converged: bool = True) -> vd.Verdicts:
    regime = tuple(
        vd.regime_record(f"{c} · R^2(s_g), top-k", [0.7, 0.71, 0.72], [0.5, 0.5, 0.5],
                         [0.6] * 3, convergence=vd.Convergence(
                             0.1 if converged else 0.2, 0.1, 0.71, 0.71, 0.05, 0.02))
        for c in CONDITIONS
    )  # fmt: skip
    return vd.Verdicts("abc", "0" * 16, regime=regime, verdicts=tuple(vd.decide_table(rows)))


def row(per_seed, placebo, control=None, predicted="increase") -> vd.Row:
    return vd.Row("Kong", "claim", predicted, 0.02, per_seed, placebo=placebo,
                  positive_control=control, conditions=CONDITIONS)  # fmt: skip


SEEN = vd.PositiveControl("drop", [-0.03, -0.031, -0.029])


def test_rows_decided_by_the_rules_are_valid() -> None:
    effect = row([0.3, 0.31, 0.29], [0.0, 0.01, -0.01])
    absence = row([0.001, -0.001, 0.0], [0.0, 0.0, 0.0], SEEN)
    rec = record([effect, absence])
    assert [v.outcome for v in rec.verdicts] == ["agrees", "disagrees"]
    assert validity_problems(rec) == []


def test_a_placebo_asserting_the_same_effect_is_caught() -> None:
    rec = record([row([0.6, 0.61, 0.59], [0.3, 0.31, 0.29])])
    assert rec.verdicts[0].outcome == "inconclusive"  # decide_table applies the rule itself
    broken = copy.deepcopy(rec.to_json())
    broken["verdicts"][0]["outcome"] = "agrees"
    del broken["verdicts"][0]["reason"]
    (problem,) = validity_problems(vd.Verdicts.from_json(broken))
    assert "placebo asserts the same effect" in problem


def test_an_absence_without_a_detected_positive_control_is_caught() -> None:
    rec = record([row([0.001, -0.001, 0.0], [0.0, 0.0, 0.0], SEEN)])
    broken = copy.deepcopy(rec.to_json())
    broken["verdicts"][0]["positive_control"]["ci"] = [-0.05, 0.01]  # no longer excludes 0
    broken["verdicts"][0]["positive_control"]["detected"] = False
    (problem,) = validity_problems(vd.Verdicts.from_json(broken))
    assert "without a detected positive control" in problem


def test_a_decided_row_over_unconverged_conditions_is_caught() -> None:
    rec = record([row([0.3, 0.31, 0.29], [0.0, 0.01, -0.01])], converged=False)
    assert rec.verdicts[0].outcome == "agrees"  # decided as if converged (no regime_reached)
    (problem,) = validity_problems(rec)
    assert "not known to have converged (region, patch)" in problem


def test_the_demos_verdicts_hold_all_three_conditions() -> None:
    rec = vd.read_verdicts(DEMO)
    assert rec.schema == 2
    predictions = [v for v in rec.verdicts if v.kind == vd.PREDICTION]
    assert predictions and all(v.placebo is not None and v.raw is not None for v in predictions)
    assert all(v.conditions for v in predictions)
    assert validity_problems(rec) == []
