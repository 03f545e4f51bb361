"""The Cao question result type and its verdict row."""

import pytest

from maelab import verdicts as vd
from maelab.probes.questions import QuestionResult, question_row


def _result(paired: list[float], predicted: str = "increase") -> QuestionResult:
    return QuestionResult(
        "Q3", "skips keep updates small", "trained", "no skip connections", 0.2, 1.4,
        paired, predicted, 0.1,
    )  # fmt: skip


def test_row_carries_question_control_and_decides_by_its_interval() -> None:
    up = vd.decide_table([question_row(_result([0.5, 0.6, 0.55, 0.52]))])[0]
    assert up.claim.startswith("Q3: ") and up.paper == "Cao" and up.control == 1.4
    assert up.outcome == "agrees"
    down = vd.decide_table([question_row(_result([-0.5, -0.6, -0.55, -0.52]))])[0]
    assert down.outcome == "inconclusive" and down.reason == "readout cannot see the effect"
    mixed = vd.decide_table([question_row(_result([-0.5, 0.6, -0.55, 0.52]))])[0]
    assert mixed.outcome == "inconclusive"
    gated = vd.decide_table([question_row(_result([0.5, 0.6, 0.55]), regime_reached=False)])[0]
    assert gated.outcome == "regime not reached"


def test_bad_question_and_single_unit_refused() -> None:
    with pytest.raises(ValueError, match="Q1"):
        QuestionResult("Q9", "c", "m", "c", 0.0, 0.0, [1.0, 2.0], "increase", 0.1)
    with pytest.raises(ValueError, match=">= 2"):
        _result([0.5])
