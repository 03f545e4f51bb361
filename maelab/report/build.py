"""`build_report`: collect a run or sweep folder, build the sections, write the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from maelab import verdicts as vd
from maelab.report.collect import collect
from maelab.report.context import ReportContext
from maelab.report.page import ShownVerdicts, render_page, write_page
from maelab.report.sections import build_sections
from maelab.run_folder import REPORT_FILE

FIGURE_DIR = "report_figures"  # inside the collected folder, beside the page
DEFAULT_TITLE = "maelab report"


@dataclass
class Report:
    path: Path
    shown: list[ShownVerdicts] = field(default_factory=list)  # the verdicts.json rows on the page
    kind: str = "sweep"  # "run" (one run folder), "sweep" or "calibration"
    sections: list[str] = field(default_factory=list)  # titles, in page order

    @property
    def verdicts(self) -> list[vd.VerdictRecord]:
        return [v for s in self.shown for v in s.rows]

    def counts(self) -> dict[str, int]:
        """Outcome counts of the prediction rows the page shows."""
        return vd.summary(self.verdicts)


def build_report(
    folder: str | Path, out: str | Path | None = None, title: str | None = None
) -> Report:
    """Write the HTML report of a run or sweep folder (default FOLDER/report.html; figures also
    saved under FOLDER/report_figures/); returns its path and the verdict rows it shows."""
    c = collect(folder)
    out = Path(out) if out else c.root / REPORT_FILE
    fig_dir = c.root / FIGURE_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    sections, body = build_sections(ReportContext.of(c, fig_dir))
    write_page(out, render_page(sections, title or DEFAULT_TITLE, c.root.name))
    shown = [s for sec in body for s in sec.verdicts]
    return Report(out, shown, c.kind, [sec.title for sec in sections])
