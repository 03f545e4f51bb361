"""Report rows and lines: unmeasured Cao questions, curves of conditions that share runs."""

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


def test_two_names_for_the_same_runs_draw_one_curve():
    from maelab.report.sections.study import _curves

    runs = {"1": [{"step": 8, "s_g_topk": 0.5}], "2": [{"step": 8, "s_g_topk": 0.7}]}
    other = {"1": [{"step": 8, "s_g_topk": 0.1}], "2": [{"step": 8, "s_g_topk": 0.3}]}
    lines = _curves({"patch": runs, "cell": other, "ratio=0.75": runs}, "s_g_topk")
    assert lines == {
        "patch = ratio=0.75 (mean of 2 seeds)": [(8, 0.6)],
        "cell (mean of 2 seeds)": [(8, 0.2)],
    }
