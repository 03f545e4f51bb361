"""A report whose folders hold no Cao experiment names each question's experiment and command."""

from maelab.report import claims
from maelab.report.sections import cao


def test_unmeasured_questions_name_their_command():
    rows = [cao._row_without_verdict(q, {}, {}) for q in ("Q1", "Q2", "Q3", "Q4", "Q5")]
    assert [r.claim.split(":")[0] for r in rows] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    assert all(r.mark == "not measured" for r in rows)
    assert all("maelab " in r.measured for r in rows)
    # the retired threshold checks' texts (CKA > 0.5, relative update) are gone
    assert not any("CKA" in r.claim or "relative update" in r.claim for r in rows)


def test_a_probe_that_ran_keeps_its_descriptive_check():
    stab = {"block_update": [3.0, 0.4], "adjacent_cka": [0.9]}
    row = cao._row_without_verdict("Q3", {"stability": stab}, {})
    assert row == claims.cao_q3(stab)
    one_seed = cao._row_without_verdict(
        "Q4", {}, {1: (60.0, float("nan")), 2: (70.0, float("nan"))}
    )
    assert "decoder depth" in one_seed.measured
