"""The HTML report of a run or a sweep: collected numbers, figures and computed verdicts."""

from maelab.report.html import build_report, report_verdicts

__all__ = ["build_report", "report_verdicts"]
