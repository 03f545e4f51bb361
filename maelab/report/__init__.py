"""The HTML report of a run or a sweep: collected numbers, figures and computed verdicts."""

from maelab.report.html import Report, build_report

__all__ = ["Report", "build_report"]
