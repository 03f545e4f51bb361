"""The page of one run folder: everything the run has, shown as its files say.

Training curves and reconstructions, the probe table (in the overview), the fine-tuning result,
`maelab analyze collapse` with its spectrum, the theory probes of `maelab analyze probes` with
their figures, and the rows of every verdicts.json in the run. The page decides nothing: a
verdict row is displayed as written. A section the run has nothing for is left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from maelab import verdicts as vd
from maelab.engine.metrics_log import read_metrics
from maelab.evaluation.collapse import spectra_figure
from maelab.report.collect import training_curve
from maelab.report.context import ReportContext, SectionBuilder
from maelab.report.page import Section, ShownVerdicts, esc, fmt, img, table
from maelab.report.sections import runs
from maelab.run_folder import (
    COLLAPSE_FIGURE,
    COLLAPSE_FILE,
    VERDICTS_FILE,
    RunFolder,
    read_json,
)
from maelab.run_records import ProbeRecord, read_probe_records, read_question_records

COLLAPSE_COLUMNS = [("dim", "dim"), ("num_images", "images"), ("effective_rank", "eff. rank"),
                    ("rankme", "RankMe"), ("alignment", "alignment"),
                    ("uniformity", "uniformity")]  # fmt: skip


def _run(ctx: ReportContext) -> RunFolder:
    return RunFolder(ctx.collected.root)


def overview_section(ctx: ReportContext) -> Section:
    """The run's length and last loss, its probe table (or how to make one) and its settings."""
    run, record = _run(ctx), next(iter(ctx.collected.runs), None)
    s = Section("overview", "Overview")
    epochs = [r for r in read_metrics(run.metrics) if r.get("kind") == "epoch" and "loss" in r]
    trained = (
        f": {int(epochs[-1].get('step', 0)):,} steps, last epoch's loss "
        f"{fmt(float(epochs[-1]['loss']))}"
        if epochs
        else ""
    )
    s.body.append(f"<p>Run folder <code>{esc(run.root)}</code>{trained}.</p>")
    s.body.extend(runs.measured_probe_table(run))
    if record is not None and record.config is not None:
        facts = [(k, v) for k, v in runs.setting_facts(record.setting) if v]
        if record.setting("data.name") == "folder":
            facts.insert(1, ("data root", str(record.setting("data.root"))))
        s.body.append(table(["", "this run"], [[esc(a), esc(b)] for a, b in facts]))
    return s


def training_section(ctx: ReportContext) -> Section | None:
    if not any(training_curve(r) for r in ctx.collected.runs):
        return None
    return runs.training_section(ctx)


def reconstructions_section(ctx: ReportContext) -> Section | None:
    if not _run(ctx).reconstruction_figure.is_file():
        return None
    return runs.reconstructions_section(ctx)


def finetune_section(ctx: ReportContext) -> Section | None:
    """RUN/finetune/finetune.json: the fine-tuned classifier's test accuracy, epoch by epoch."""
    path = RunFolder(_run(ctx).finetune_run).finetune_result
    record = read_json(path)
    if not isinstance(record.get("top1"), (int, float)):
        return None
    s = Section("finetune", "Fine-tuning")
    s.body.append(
        f"<p>The encoder fine-tuned end to end as a timm ViT classifier "
        f"(<code>maelab finetune</code>), from <code>{esc(path)}</code>: test top-1 "
        f"<b>{fmt(record['top1'])}%</b> after {record.get('epochs', '?')} epochs (best "
        f"{fmt(record.get('best_top1', math.nan))}%), {fmt(record.get('seconds', math.nan))} s."
        "</p>"
    )
    rows = [
        [str(h.get("epoch", "?")), fmt(h.get("loss", math.nan)), fmt(h.get("test_top1", math.nan)),
         fmt(h.get("test_top5") if h.get("test_top5") is not None else math.nan)]
        for h in record.get("history", []) if isinstance(h, dict)
    ]  # fmt: skip
    if rows:
        s.body.append(table(["epoch", "train loss", "test top-1 %", "test top-5 %"], rows))
    return s


def collapse_section(ctx: ReportContext) -> Section | None:
    """RUN/analysis/collapse.json (`maelab analyze collapse`) and its spectrum figure."""
    folder = _run(ctx).analysis
    records = _read_list(folder / COLLAPSE_FILE)
    if not records:
        return None
    s = Section("collapse", "Dimensional collapse")
    s.body.append(
        "<p>Effective rank and RankMe of the pooled features (higher: less collapsed), alignment "
        "of two masked views and uniformity of a masked view (Wang &amp; Isola; lower: more "
        f"uniform), from <code>{esc(folder / COLLAPSE_FILE)}</code>.</p>"
    )
    rows = [[esc(r.get("label", "?"))] + [_cell(r.get(k)) for k, _ in COLLAPSE_COLUMNS]
            for r in records]  # fmt: skip
    s.body.append(table(["checkpoint", *[label for _, label in COLLAPSE_COLUMNS]], rows))
    figure = folder / COLLAPSE_FIGURE
    if not figure.is_file():  # written by the analysis; drawn again from the spectra if gone
        spectra = {str(r.get("label", i)): r["spectrum"] for i, r in enumerate(records)
                   if isinstance(r.get("spectrum"), list) and r["spectrum"]}  # fmt: skip
        if not spectra:
            return s
        figure = spectra_figure(spectra, ctx.fig_dir / COLLAPSE_FIGURE)
    s.body.append(img(figure, "eigenvalues of the feature covariance, normalised (log scale)"))
    return s


def theory_probes_section(ctx: ReportContext) -> Section | None:
    """RUN/probes (`maelab analyze probes`): each probe's figure, and each question's record."""
    folder = _run(ctx).probes
    probes, questions = read_probe_records(folder), read_question_records(folder)
    if not probes and not questions:
        return None
    s = Section("theory-probes", "Theory probes")
    s.body.append(
        f"<p>Probes of the trained model and Cao et al.'s question experiments from "
        f"<code>{esc(folder)}</code>; their decided rows are in the next section.</p>"
    )
    if questions:
        rows = []
        for q, r in questions.items():
            res = r.get("result") if isinstance(r.get("result"), dict) else {}
            rows.append([esc(q), esc(res.get("manipulation", "")), esc(res.get("control", "")),
                         fmt(_number(res.get("treated"))), fmt(_number(res.get("control_value"))),
                         fmt(_number(r.get("seconds")))])  # fmt: skip
        header = ["question", "manipulation", "control", "treated", "control value", "seconds"]
        s.body.append(table(header, rows, "verdicts"))
    # in question order (their records name it: "Cao Q1: ..."), then by name
    for name, rec in sorted(probes.items(), key=lambda kv: (kv[1].question, kv[0])):
        about = ", ".join(x for x in (rec.question, _seconds(rec)) if x)
        s.body.append(f"<h3>{esc(name)}</h3><p class='note'>{esc(about)}</p>")
        if rec.has_figure:
            s.body.append(img(rec.figure, f"{name}: {rec.question}"))
    return s


def verdict_rows_section(ctx: ReportContext) -> Section | None:
    """Every verdicts.json of the run (RUN/ and one level down), rows as written."""
    run = _run(ctx)
    paths = [p for p in (run.verdicts, *sorted(run.root.glob(f"*/{VERDICTS_FILE}"))) if p.is_file()]
    if not paths:
        return None
    s = Section("verdict-rows", "Verdicts")
    s.body.append(
        "<p>The rows of the run's verdicts files as they were written (the report decides "
        "nothing): the effect of the treated condition minus its control, its interval, what "
        "was predicted and the outcome.</p>"
    )
    for path in paths:
        s.body.append(f"<h3><code>{esc(path.relative_to(run.root))}</code></h3>")
        try:
            record = vd.read_verdicts(path)
        except vd.VerdictsError as exc:
            s.body.append(f"<p class='note'>not read: {esc(exc)}</p>")
            continue
        s.verdicts.append(ShownVerdicts(path, record, record.verdicts))
        s.body.append(_verdict_table(record.verdicts))
        s.body.append(
            f"<p class='note'>{esc(record.ci_method)}; commit {esc(record.commit[:12])}</p>"
        )
    return s


def _verdict_table(rows: tuple[vd.VerdictRecord, ...]) -> str:
    body = []
    for v in rows:
        level = f" at {v.level:.0%}" if v.level else ""
        body.append([
            esc(v.paper), esc(v.claim), esc(v.kind), _signed(v.control),
            f"{_signed(v.effect)} [{_signed(v.ci[0])}, {_signed(v.ci[1])}]{level}",
            str(v.n_seeds), esc(v.predicted or "–"), fmt(_number(v.margin)),
            f'<span class="{esc(v.outcome.replace(" ", "-"))}">{esc(v.outcome)}</span>',
        ])  # fmt: skip
    header = ["paper", "claim", "kind", "control", "effect [CI]", "seeds", "predicted", "margin",
              "outcome"]  # fmt: skip
    return table(header, body, "verdicts")


def _read_list(path: Path) -> list[dict[str, Any]]:
    """A JSON list of objects (what `maelab analyze collapse` writes); [] when absent or not."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in obj if isinstance(r, dict)] if isinstance(obj, list) else []


def _number(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan


def _cell(x: Any) -> str:
    """An integer as it is (a width, a count), any other number through `fmt`."""
    return str(x) if isinstance(x, int) and not isinstance(x, bool) else fmt(_number(x))


def _signed(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:+.4g}"


def _seconds(rec: ProbeRecord) -> str:
    return f"{rec.seconds:.1f} s" if math.isfinite(rec.seconds) else ""


RUN_SECTIONS: list[SectionBuilder] = [
    overview_section,
    training_section,
    reconstructions_section,
    finetune_section,
    collapse_section,
    theory_probes_section,
    verdict_rows_section,
]
