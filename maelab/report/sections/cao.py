"""Cao, Xu, Clifton 2022: the five questions on how MAE works inside (Q1-Q5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maelab.probes import decoder_ablation
from maelab.probes import figures as probe_figures
from maelab.probes.results import read_probe_results
from maelab.report import claims
from maelab.report.collect import Collected, Group
from maelab.report.context import ReportContext
from maelab.report.page import Section, esc, img
from maelab.report.slicing import DEC_DEPTH, axis_contexts, series
from maelab.run_folder import RunFolder

PROBE_TITLES = [
    ("position", "Q1 position"),
    ("low_rank", "Q2 low rank"),
    ("stability", "Q3 stability"),
    ("interpolation", "Q5 interpolation"),
]


def _probe_records(c: Collected) -> dict[str, dict[str, Any]]:
    """Probe results of the folder itself, then of its runs (the first record of a probe wins)."""
    found = read_probe_results(RunFolder(c.root).probes)
    for r in c.runs:
        for name, rec in read_probe_results(RunFolder(r.path).probes).items():
            found.setdefault(name, rec)
    return found


def cao_section(ctx: ReportContext) -> Section:
    c, groups, ref, fig_dir = ctx.collected, ctx.groups, ctx.ref, ctx.fig_dir
    s = Section("cao", "How MAE works inside (Cao, Xu, Clifton 2022: Q1-Q5)")
    s.body.append(
        "<p>Cao et al. read patch attention as a learned integral-kernel transform and ask five "
        "questions. Q1, Q2, Q3 and Q5 are probes of one trained model; Q4 compares runs that "
        "differ only in the decoder.</p>"
    )
    recs = _probe_records(c)
    for name, title in PROBE_TITLES:
        rec = recs.get(name)
        if rec and Path(rec["figure"]).is_file():
            s.body.append(
                f"<h3>{esc(title)}</h3><p class='note'>{esc(rec.get('question', ''))}; checkpoint <code>{esc(rec.get('checkpoint', ''))}</code></p>"
            )
            s.body.append(img(Path(rec["figure"]), title))
    res = {k: v.get("result") for k, v in recs.items()}
    s.verdicts += [
        claims.cao_q1(res.get("position")),
        claims.cao_q2(res.get("low_rank")),
        claims.cao_q3(res.get("stability")),
    ]
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
    s.verdicts.append(claims.cao_q4(by_depth, "linear probe %"))
    s.verdicts.append(claims.cao_q5(res.get("interpolation")))
    return s
