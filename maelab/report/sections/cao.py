"""Cao, Xu, Clifton 2022: the five questions on how MAE works inside (Q1-Q5).

Each question is an experiment with a control (docs/theory.md). Its decided rows come from the
`verdicts.json` of a probe folder: `maelab analyze probes` writes one per checkpoint (RUN/probes,
bootstrap intervals over images) and `maelab analyze decoder` one per decoder-depth sweep
(SWEEP/probes, t intervals over seeds, Q4). A question without a decided row falls back to the
descriptive check of its probe (`maelab.report.claims`), or reads "not measured".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from maelab import verdicts as vd
from maelab.probes import QUESTIONS as EXPERIMENTS
from maelab.probes import decoder_ablation
from maelab.probes import figures as probe_figures
from maelab.probes.questions import QUESTIONS
from maelab.probes.results import read_probe_results
from maelab.report import claims
from maelab.report.collect import Collected, Group
from maelab.report.context import ReportContext
from maelab.report.page import Section, esc, img, table
from maelab.report.slicing import DEC_DEPTH, axis_contexts, series
from maelab.run_folder import VERDICTS_FILE, RunFolder

PROBE_TITLES = [
    ("position", "Q1 position"),
    ("low_rank", "Q2 low rank"),
    ("stability", "Q3 stability"),
    ("interpolation", "Q5 interpolation"),
]
OUTCOME_AGREES = {"agrees": True, "disagrees": False}  # other outcomes: measured, undecided


def _probe_folders(c: Collected) -> list[Path]:
    """The folder's own probe folder, then its runs' (the first record of a probe wins)."""
    return [RunFolder(c.root).probes, *(RunFolder(r.path).probes for r in c.runs)]


def _probe_records(c: Collected) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for folder in _probe_folders(c):
        for name, rec in read_probe_results(folder).items():
            found.setdefault(name, rec)
    return found


def question_records(c: Collected) -> tuple[list[vd.VerdictRecord], list[str]]:
    """Decided rows of Cao's questions (the first folder that decides a claim wins) and the
    ci_method of each file they came from."""
    rows: dict[str, vd.VerdictRecord] = {}
    methods: list[str] = []
    for folder in _probe_folders(c):
        path = folder / VERDICTS_FILE
        if not path.is_file():
            continue
        try:
            record = vd.read_verdicts(path)
        except vd.VerdictsError:
            continue  # a damaged file: the question falls back to its probe
        fresh = [v for v in record.verdicts if v.paper == "Cao" and v.claim not in rows]
        for v in fresh:
            rows[v.claim] = v
        if fresh and record.ci_method not in methods:
            methods.append(record.ci_method)
    return sorted(rows.values(), key=lambda v: v.claim), methods


def _num(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:+.{digits}g}"


def decided_verdict(v: vd.VerdictRecord) -> claims.Verdict:
    """A decided row as a line of the report's verdict summary."""
    lo, hi = v.ci
    control = "" if v.control is None else f"; control condition {_num(v.control)}"
    measured = (
        f"treated - control {_num(v.effect)} [{_num(lo)}, {_num(hi)}] at {v.level or 0.95:.1%}"
        f"{control}; predicted {v.predicted}, margin {v.margin:g}"
        + (f", {v.n_seeds} seeds" if v.n_seeds > 1 else ", one checkpoint (bootstrap over images)")
    )
    return claims.Verdict(claims.CAO, v.claim, measured, OUTCOME_AGREES.get(v.outcome), v.outcome)


def _decided_table(rows: list[vd.VerdictRecord]) -> str:
    body = [
        [esc(v.claim), _num(v.control), f"{_num(v.effect)} [{_num(v.ci[0])}, {_num(v.ci[1])}]",
         str(v.n_seeds), esc(v.predicted or ""), f"{v.margin:g}" if v.margin is not None else "–",
         esc(v.outcome)]
        for v in rows
    ]  # fmt: skip
    header = ["question: claim", "control", "treated - control [CI]", "seeds", "predicted",
              "margin", "outcome"]  # fmt: skip
    return table(header, body, "verdicts")


def _fallback(question: str, res: dict[str, Any], by_depth: Any) -> claims.Verdict:
    """The probe's descriptive check where no decided row exists."""
    if question == "Q4":
        return claims.cao_q4(by_depth, "linear probe %")
    check = {"Q1": (claims.cao_q1, "position"), "Q2": (claims.cao_q2, "low_rank"),
             "Q3": (claims.cao_q3, "stability"), "Q5": (claims.cao_q5, "interpolation")}  # fmt: skip
    fn, probe = check[question]
    return fn(res.get(probe))


def _row_without_verdict(question: str, res: dict[str, Any], by_depth: Any) -> claims.Verdict:
    """A question without a decided row: the probe's descriptive check where one ran, else the
    question's experiment and the command that decides it (never the retired checks' texts)."""
    v = _fallback(question, res, by_depth)
    if not v.measured.startswith(("not measured", "needs runs")):
        return v
    q = EXPERIMENTS[question]
    return claims.Verdict(claims.CAO, f"{question}: {q.title}", f"not measured here: {q.how}", None)


def cao_section(ctx: ReportContext) -> Section:
    c, groups, ref, fig_dir = ctx.collected, ctx.groups, ctx.ref, ctx.fig_dir
    s = Section("cao", "How MAE works inside (Cao, Xu, Clifton 2022: Q1-Q5)")
    s.body.append(
        "<p>Cao et al. read patch attention as a learned integral-kernel transform and ask five "
        "questions. Each is an experiment with a control: Q1, Q2, Q3 and Q5 on one trained "
        "model (<code>maelab analyze probes</code>), Q4 over runs that differ only in the "
        "decoder (<code>maelab analyze decoder</code>).</p>"
    )
    decided, methods = question_records(c)
    if decided:
        s.body.append("<h3>Each question beside its control</h3>" + _decided_table(decided))
        s.body += [f"<p class='note'>{esc(m)}</p>" for m in methods]
    recs = _probe_records(c)
    for name, title in PROBE_TITLES:
        rec = recs.get(name)
        if rec and Path(rec["figure"]).is_file():
            s.body.append(
                f"<h3>{esc(title)}</h3><p class='note'>{esc(rec.get('question', ''))}; checkpoint <code>{esc(rec.get('checkpoint', ''))}</code></p>"
            )
            s.body.append(img(Path(rec["figure"]), title))
    res = {k: v.get("result") for k, v in recs.items()}
    dec: list[Group] = []
    if DEC_DEPTH in c.keys:  # the first set of runs that differ only in the decoder depth
        dec = list(axis_contexts(groups, c.keys, DEC_DEPTH, ref, None)[0][1].values())
    by_depth = series(dec, DEC_DEPTH, "linear_top1")
    if len(by_depth) >= 2:
        try:
            rows = [{"model.decoder_depth": r.values[DEC_DEPTH],
                     "model.decoder_embed_dim": r.arch.decoder_embed_dim if r.arch else 0,
                     "linear": r.metrics.get("linear_top1"), "knn": r.metrics.get("knn_top1"),
                     "effective_rank": r.metrics.get("effective_rank")}
                    for g in dec for r in g.runs]  # fmt: skip
            path = probe_figures.decoder_ablation_figure(
                decoder_ablation(rows), fig_dir / "decoder_ablation.png"
            )
            s.body.append(
                "<h3>Q4 decoder</h3>"
                + img(path, "encoder probes by decoder depth (runs differing only in the decoder)")
            )
        except (ValueError, KeyError) as exc:
            s.body.append(f"<p class='note'>decoder ablation figure unavailable: {esc(exc)}</p>")
    for q in QUESTIONS:
        mine = [v for v in decided if v.claim.startswith(f"{q}:")]
        s.verdicts += [decided_verdict(v) for v in mine] or [_row_without_verdict(q, res, by_depth)]
    return s
