"""The report's sections, in page order.

Each section is a `SectionBuilder`: `(ctx: ReportContext) -> Section | None` (None: nothing to
show). A new section is a function in a module of its paper or topic, listed in `SECTIONS`. The
verdict summary is built last from the others' verdicts and placed after `SUMMARY_AFTER`.
"""

from __future__ import annotations

from maelab.report.context import ReportContext, SectionBuilder
from maelab.report.page import SUMMARY_ID, Section
from maelab.report.sections import cao, kong, run_story, runs, study, zhang
from maelab.report.sections.summary import verdicts_section

SECTIONS: list[SectionBuilder] = [
    runs.overview_section,
    study.study_section,
    runs.training_section,
    runs.reconstructions_section,
    runs.probes_section,
    kong.identifiability_section,
    zhang.collapse_section,
    cao.cao_section,
]
SUMMARY_AFTER = "overview"
DECIDED_BY_STUDY = ("identifiability", "collapse")  # sections whose rows the study decides
# the ids of a full report (a sweep with every kind of run), in page order; a demo folder
# (one with verdicts.json) also has the study section right after the summary
SECTION_IDS = ["overview", SUMMARY_ID, "training", "reconstructions", "probes", "identifiability",
               "collapse", "cao"]  # fmt: skip


def build_sections(ctx: ReportContext) -> tuple[list[Section], list[Section]]:
    """(the page's sections in order, the sections that carry verdicts without the summary)."""
    if ctx.collected.kind == "run":  # one run: what its files hold, nothing decided here
        return (page := [s for b in run_story.RUN_SECTIONS if (s := b(ctx)) is not None]), page
    body = [s for build in SECTIONS if (s := build(ctx)) is not None]
    if any(s.id == study.STUDY_ID for s in body):
        # the study decides these papers' rows by paired intervals; the sections' older
        # spread-based checks would only restate them with a weaker rule
        for s in body:
            if s.id in DECIDED_BY_STUDY:
                s.verdicts = []
    at = next((i + 1 for i, s in enumerate(body) if s.id == SUMMARY_AFTER), 0)
    return [*body[:at], verdicts_section(body), *body[at:]], body


__all__ = ["SECTIONS", "SECTION_IDS", "SUMMARY_AFTER", "build_sections", "ReportContext"]
