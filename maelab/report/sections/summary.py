"""The verdict summary: every verdicts.json file the page shows, with its outcome counts."""

from __future__ import annotations

from collections.abc import Sequence

from maelab import stats
from maelab import verdicts as vd
from maelab.report.page import SUMMARY_ID, Section, esc, table


def verdicts_section(sections: Sequence[Section]) -> Section:
    """Counts of the rows each section shows, per file (predictions; instrument checks apart)."""
    s = Section(SUMMARY_ID, "Predictions vs measurements")
    s.body.append(
        "<p>Every verdict below was decided by the command that wrote its "
        "<code>verdicts.json</code> (paired intervals over seeds, or a bootstrap over the "
        'images of one checkpoint; docs/theory.md, "How verdicts are decided"); this page '
        "only shows them. Counts are of prediction rows; instrument checks never count for a "
        "paper. Small CPU budgets give small effects: read each row's interval and margin.</p>"
    )
    rows = []
    for sec in sections:
        for shown in sec.verdicts:
            counts = vd.summary(shown.rows)
            checks = sum(v.kind == vd.INSTRUMENT for v in shown.rows)
            rows.append(
                [f"<a href='#{sec.id}'>{esc(sec.title.split(' (')[0])}</a>",
                 f"<code>{esc(shown.path)}</code>", *(str(counts[o]) for o in stats.OUTCOMES),
                 str(checks)]
            )  # fmt: skip
    s.body.append(table(["section", "file", *stats.OUTCOMES, "instrument checks"], rows,
                        "verdicts"))  # fmt: skip
    return s
