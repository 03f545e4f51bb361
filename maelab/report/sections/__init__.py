"""The report's sections, in page order.

Each section is a `SectionBuilder`: `(ctx: ReportContext) -> Section | None` (None: nothing to
show). A new section is a function in a module of its paper or topic, listed in `SECTIONS`.
Sections show measurements, and the rows of the `verdicts.json` files the folder holds; a sweep
whose sections show prediction rows or regime records opens with their summary ("What we know").
"""

from __future__ import annotations

from maelab.report.context import ReportContext, SectionBuilder
from maelab.report.page import SUMMARY_ID, Section
from maelab.report.sections import calibration, cao, kong, run_story, runs, study, zhang
from maelab.report.sections.summary import summary_section

SECTIONS: list[SectionBuilder] = [
    runs.overview_section,
    calibration.calibration_section,
    study.study_section,
    runs.training_section,
    runs.reconstructions_section,
    runs.probes_section,
    kong.identifiability_section,
    zhang.collapse_section,
    cao.cao_section,
]
# the ids of a full report (a sweep with every kind of run), in page order; a folder with a
# verdicts.json also opens with the summary, and a demo folder has the calibration and the study
# sections
SECTION_IDS = ["overview", "training", "reconstructions", "probes", "identifiability", "collapse",
               "cao"]  # fmt: skip


def build_sections(ctx: ReportContext) -> tuple[list[Section], list[Section]]:
    """(the page's sections in order, the sections without the summary)."""
    if ctx.collected.kind == "run":  # one run: what its files hold, nothing decided here
        return (page := [s for b in run_story.RUN_SECTIONS if (s := b(ctx)) is not None]), page
    if ctx.collected.kind == "calibration":  # no runs: the calibration's rows and figures only
        return (page := [s for s in [calibration.calibration_section(ctx)] if s]), page
    body = [s for build in SECTIONS if (s := build(ctx)) is not None]
    if not any(s.verdicts for s in body):
        return body, body  # measurements only: no verdict column anywhere
    summary = summary_section(body)
    return ([summary, *body] if summary else body), body


__all__ = ["SECTIONS", "SECTION_IDS", "SUMMARY_ID", "build_sections",
           "ReportContext"]  # fmt: skip
