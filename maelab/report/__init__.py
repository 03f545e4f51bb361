"""The HTML report of a run or a sweep: collected numbers, figures, and the verdicts that
`verdicts.json` files hold (the report decides none)."""

from maelab.report.build import Report, build_report
from maelab.report.sections import SECTION_IDS

__all__ = ["SECTION_IDS", "Report", "build_report"]
