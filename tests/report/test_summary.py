"""The summary ("What we know"): decided rows with their placebo, undecided rows with their
reason and the seeds an effect of the margin would take, the conditions' convergence."""

import math
from pathlib import Path

from maelab import verdicts as vd
from maelab.report.page import Section, ShownVerdicts
from maelab.report.sections.summary import seeds_needed, summary_section

MARGIN = 0.02
STILL = [0.0, 0.04, -0.04, 0.02, -0.02]  # mean 0, sd sqrt(0.001)


def _verdicts() -> vd.Verdicts:
    rows = vd.decide_table([
        vd.Row("Kong", "region-sized units keep less e_r", "decrease", MARGIN,
               [0.20, 0.22, 0.21, 0.23, 0.24], placebo=[0.27, 0.29, 0.28, 0.31, 0.30],
               positive_control=vd.PositiveControl("e_r redrawn", [-0.05, -0.06, -0.04, -0.05,
                                                                   -0.055])),
        vd.Row("Kong", "patch units keep e_c", "increase", MARGIN, STILL,
               regime_reached=False, regime_reason=vd.STILL_LEARNING),
        vd.Row("Kong", "z_g matched", "none", MARGIN, [0.001, -0.001, 0.0, 0.002, -0.002],
               placebo=[0.0] * 5),
        vd.Row("all", "a check", "none", 0.05, [0.0, 0.01], "instrument"),
    ])  # fmt: skip

    def conv(loss):
        return vd.Convergence(loss, 1.0, 0.5, 0.5, 0.05, 0.02)

    regime = (
        vd.RegimeRecord("patch · R^2(s_g)", 0.6, 0.7, 0.5, (0.01, 0.2), 0.65, conv(1.1)),
        vd.RegimeRecord("cell · R^2(s_g)", 0.6, 0.7, 0.5, (0.01, 0.2), 0.65, conv(1.02)),
        vd.RegimeRecord("region · R^2(s_g)", 0.6, 0.7, 0.5, (0.01, 0.2)),
    )
    return vd.Verdicts("c0ffee", "h", regime=regime, verdicts=tuple(rows))


def _summary() -> str:
    record = _verdicts()
    sec = Section("study", "study", verdicts=[ShownVerdicts(Path("v.json"), record,
                                                            record.verdicts)])  # fmt: skip
    s = summary_section([sec])
    assert s is not None and s.title == "What we know"
    return "".join(s.body)


def test_a_decided_row_reads_with_its_placebo_and_raw_contrast():
    text = _summary()
    # raw mean 0.22, placebo mean 0.29: -0.07 beyond the untrained network, 3 decimals (the
    # interval's half-width is about 0.011)
    assert ("<b>Kong</b>: Region-sized units keep less e_r: <span class=\"agrees\">agrees</span>, "
            "\u22120.070 [") in text  # fmt: skip
    assert "beyond the untrained network (placebo +0.290, raw +0.220), 5 seeds." in text
    assert "a check" not in text  # instrument rows never count


def test_an_undecided_row_gives_its_reason_and_the_seeds_it_would_take():
    text = _summary()
    # t(0.975, 4) = 2.7764 x sqrt(0.001) / sqrt(5) = 0.03927; 5 x (0.03927 / 0.02)^2 = 19.3
    half = 2.776445 * math.sqrt(0.001) / math.sqrt(5)
    assert math.ceil(5 * (half / MARGIN) ** 2) == 20
    row = _verdicts().verdicts[1]
    assert math.isclose(row.min_detectable, half, rel_tol=1e-4) and seeds_needed(row) == 20
    assert ("Patch units keep e_c: <span class=\"not-measured\">regime not reached</span> "
            "(still learning); min detectable ±0.039: an effect of 0.02 would take ≈ 20 seeds "
            "(now 5).") in text  # fmt: skip
    # an absence with no positive control: the readout might not see it
    assert "(readout cannot see the effect); min detectable" in text
    assert "5 seeds already detect an effect of 0.02." in text


def test_the_convergence_line_counts_conditions_against_their_pilot():
    text = _summary()
    assert (
        "Convergence: 1 of 2 conditions with a 3×-longer pilot converged (1 without a "
        "pilot); the largest loss gap above the pilot is +10.0% (patch)."
    ) in text


def test_no_pilot_anywhere_says_convergence_was_not_checked():
    rec = vd.RegimeRecord("patch · R^2(s_g)", 0.6, 0.7, 0.5, (0.01, 0.2))
    record = vd.Verdicts("c0ffee", "h", regime=(rec,))
    s = summary_section([Section("x", "x", verdicts=[ShownVerdicts(Path("v"), record, ())])])
    assert "Convergence not checked: no condition has a 3×-longer pilot (1 conditions)." in "".join(
        s.body
    )
    assert summary_section([Section("x", "x")]) is None
