"""Cao, Xu, Clifton 2022: the five questions on how MAE works inside (Q1-Q5).

Each question is an experiment with a control (docs/theory.md). The section shows what the
commands that measure them wrote into probe folders: the rows of their `verdicts.json`
(`maelab analyze probes` on a checkpoint: RUN/probes, bootstrap intervals over images;
`maelab analyze decoder` on a decoder-depth sweep: SWEEP/probes, t intervals over seeds, Q4)
and the figures of the probes they ran (the Q4 ablation figure among them), each under its
record's question line.
"""

from __future__ import annotations

from maelab.config import DECODER_DEPTH_KEY
from maelab.report.collect import Collected
from maelab.report.context import ReportContext
from maelab.report.page import Section, esc, img, verdict_table
from maelab.report.verdict_files import probe_files, probe_folders
from maelab.run_records import ProbeRecord, read_probe_records


def probe_records(c: Collected) -> dict[str, ProbeRecord]:
    """The probe records of the folder's probe folder, then its runs' (the first one wins)."""
    found: dict[str, ProbeRecord] = {}
    for folder in probe_folders(c):
        for name, rec in read_probe_records(folder).items():
            found.setdefault(name, rec)
    return found


def cao_section(ctx: ReportContext) -> Section:
    c = ctx.collected
    s = Section("cao", "How MAE works inside (Cao, Xu, Clifton 2022: Q1-Q5)")
    s.body.append(
        "<p>Cao et al. read patch attention as a learned integral-kernel transform and ask five "
        "questions. Each is an experiment with a control: Q1, Q2, Q3 and Q5 on one trained "
        "model (<code>maelab analyze probes --ckpt RUN/checkpoints/last.pt</code>), Q4 over "
        "runs that differ only in the decoder (<code>maelab analyze decoder --sweep "
        "SWEEP</code>). The rows below are theirs, read from the <code>verdicts.json</code> "
        "they wrote.</p>"
    )
    s.verdicts = probe_files(c)
    for shown in s.verdicts:
        rows = sorted(shown.rows, key=lambda v: v.claim)
        s.body.append(
            f"<h3>Each question beside its control</h3><p class='note'>from "
            f"<code>{esc(shown.path)}</code>; {esc(shown.record.ci_method)}</p>"
            + verdict_table(rows, first="question: claim")
        )
    records = probe_records(c)
    drawn = sorted((r for r in records.values() if r.has_figure), key=lambda r: r.question)
    for rec in drawn:  # the question line names the paper and the question: "Cao Q1: ..."
        s.body.append(f"<h3>{esc(rec.question)}</h3>")
        s.body.append(img(rec.figure, f"{rec.probe}, read from {rec.source}"))
    if DECODER_DEPTH_KEY in c.keys and not s.verdicts:
        s.body.append(
            "<p class='note'>These runs differ in the decoder depth: <code>maelab analyze "
            f"decoder --sweep {esc(c.root)}</code> decides Q4 and draws its figure.</p>"
        )
    if not s.verdicts and not drawn:
        s.body.append("<p class='note'>No question was measured in this folder.</p>")
    return s
