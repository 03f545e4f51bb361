"""The verdict summary: every prediction of every section in one table, with counts."""

from __future__ import annotations

from collections.abc import Sequence

from maelab.report import claims
from maelab.report.page import SUMMARY_ID, Section, verdict_table


def verdicts_section(sections: Sequence[Section]) -> Section:
    """The summary of the verdicts the other sections computed."""
    allv = [v for sec in sections for v in sec.verdicts]
    counts = claims.summarise(allv)
    s = Section(SUMMARY_ID, "Predictions vs measurements")
    if any(sec.id == "study" for sec in sections):
        s.body.append(
            "<p><b>The study's verdicts</b> (paired intervals over seeds, regime gate, derived "
            "predictions) are in <a href='#study'>the study section</a>; the checks below are the "
            "sections' descriptive ones for the rows the study does not decide.</p>"
        )
    others = "".join(
        f", {n} {k}" for k, n in counts.items() if k not in ("agrees", "disagrees", "not measured")
    )
    where = "Outside the study: " if any(sec.id == "study" for sec in sections) else ""
    s.body.append(
        f"<p>{where}{counts['agrees']} agree, {counts['disagrees']} disagree{others}, "
        f"{counts['not measured']} not measured. Each verdict is computed from the numbers below (see each section); small "
        "CPU budgets give small effects, so read the spread over seeds before the verdict.</p>"
    )
    s.body.append(verdict_table(allv))
    return s
