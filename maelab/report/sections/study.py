"""The study's verdicts, read from `verdicts.json` (and `study.json`) of a demo folder.

Rows decided by paired intervals over seeds (maelab.stats), each beside the prediction derived
for its conditions; the regime gate per condition and readout; instrument checks apart; the rows
not decided and why; the regime readouts over training checkpoints.
"""

from __future__ import annotations

import json
import math
from typing import Any

from maelab import verdicts as vd
from maelab.metric_names import E_R, EFFECTIVE_RANK, S_G_TOPK, Z_G
from maelab.report import figures
from maelab.report.context import ReportContext
from maelab.report.page import Section, esc, img, outcome, table
from maelab.report.verdict_files import study_file
from maelab.run_folder import STUDY_FILE, read_json

STUDY_ID = "study"
CURVES = (  # (curve key, label, view): the regime gate's readout first
    (S_G_TOPK, "R^2(s_g)", "top-k principal directions"),
    (Z_G, "R^2(z_g)", "full view"),
    (E_R, "R^2(e_r)", "full view"),
    (EFFECTIVE_RANK, "effective rank", "pooled features"),
)


def _num(x: float, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:+.{digits}f}"


def _rows(records: list[vd.VerdictRecord], derived: dict[str, str]) -> list[list[str]]:
    out = []
    for v in records:
        pc = v.positive_control
        out.append(
            [
                esc(v.paper),
                esc(v.claim),
                esc(derived.get(v.claim, v.predicted or "")),
                _effect(v.effect, v.ci),
                "–" if v.raw is None else _effect(v.raw.effect, v.raw.ci),
                "–"
                if v.placebo is None
                else f"{_effect(v.placebo.effect, v.placebo.ci)} "
                f"{outcome(v.placebo.outcome or '')}",
                "–"
                if pc is None
                else f"<span title='{esc(pc.what)}'>{_effect(pc.effect, pc.ci)}"
                f" {'detected' if pc.detected else 'not detected'}</span>",
                str(v.n_seeds),
                _num(v.min_detectable, 4).lstrip("+"),
                f"{v.margin:g}" if v.margin is not None else "–",
                outcome(v.shown_outcome),
            ]
        )
    return out


def _effect(effect: float, ci: tuple[float, float]) -> str:
    return f"{_num(effect, 4)} [{_num(ci[0], 4)}, {_num(ci[1], 4)}]"


def _regime_row(r: vd.RegimeRecord) -> list[str]:
    """A condition's gate: readouts, the interval, reached, the pixels' PCA-k and the condition
    against its pilot (loss / pilot loss (gap), converged; only the pilot's gate has one); '–'
    where not measured."""
    c = r.convergence
    return [
        esc(r.condition), f"{r.encoder:.3f}", f"{r.random:.3f}", f"{r.pixels:.3f}",
        "–" if r.pca is None or not math.isfinite(r.pca) else f"{r.pca:.3f}",
        f"[{_num(r.ci[0], 4)}, {_num(r.ci[1], 4)}]", "yes" if r.reached else "no",
        "yes" if r.above_pixels else "no",
        "–" if c is None else f"{c.loss:.4g} / {c.pilot_loss:.4g} ({c.gap:+.1%})",
        "–" if c is None else ("yes" if c.converged else "no"),
    ]  # fmt: skip


def _curves(stored: dict[str, Any], readout: str) -> dict[str, list[tuple[int, float]]]:
    """One line per condition: the readout at each checkpoint step, averaged over the seeds
    (one line per run would be too many to tell apart or label)."""
    lines: dict[str, tuple[list[str], int, list[tuple[int, float]]]] = {}
    for cond, per_seed in stored.items():
        by_step: dict[int, list[float]] = {}
        for points in per_seed.values():
            for p in points:
                if readout in p:
                    by_step.setdefault(int(p["step"]), []).append(float(p[readout]))
        if by_step:
            line = [(k, sum(v) / len(v)) for k, v in sorted(by_step.items())]
            # two names for the same runs (`patch` and `ratio=0.75` in --full): one line
            same = json.dumps(per_seed, sort_keys=True)
            names = lines.setdefault(same, ([], len(per_seed), line))[0]
            names.append(cond)
    return {f"{' = '.join(n)} (mean of {k} seeds)": line for n, k, line in lines.values()}


def study_section(ctx: ReportContext) -> Section | None:
    shown = study_file(ctx.collected)
    if shown is None:
        return None
    record = shown.record
    extra = read_json(ctx.collected.root / STUDY_FILE)
    derived: dict[str, str] = extra.get("derived", {})
    s = Section(STUDY_ID, "The study's verdicts (paired over seeds)", verdicts=[shown])
    counts = vd.summary(record.verdicts)
    s.body.append(
        "<p>Each row compares two conditions seed by seed (same seed: same initial encoder, "
        "batches and masks). The effect is the mean paired difference with its 95% t interval "
        "(Holm-adjusted levels within the prediction rows); the outcome follows the rule and "
        "the margins of docs/theory.md. A row whose conditions' trained encoders do not beat "
        "the same seed's random encoder on the row's readout reads <i>regime not reached</i>. "
        "A row with a placebo is decided on its trained contrast (<i>raw</i>) minus the same "
        "seeds' untrained networks' (<i>placebo</i>, with the row's rule applied to it alone); "
        "its positive control (hover for what it is) shows the readout can see an effect of "
        "the margin's size; a validity rule that sets the outcome gives its reason. "
        "Predictions: " + ", ".join(f"{n} {esc(k)}" for k, n in counts.items()) + ".</p>"
        f"<p class='note'>commit {esc(record.commit[:12])}, config {esc(record.config_hash)}; "
        f"{esc(record.ci_method)}.</p>"
    )
    header = ["paper", "claim", "derived prediction", "effect [CI]", "raw [CI]",
              "placebo [CI], its outcome", "positive control [CI]", "n seeds", "min detectable",
              "margin", "outcome"]  # fmt: skip
    preds = [v for v in record.verdicts if v.kind == vd.PREDICTION]
    checks = [v for v in record.verdicts if v.kind == vd.INSTRUMENT]
    s.body.append(table(header, _rows(preds, derived), "verdicts"))
    s.body.append("<h3>Instrument checks (never counted for a paper)</h3>")
    s.body.append(table(header, _rows(checks, derived), "verdicts"))
    regime = [_regime_row(r) for r in record.regime]
    s.body.append("<h3>Regime: trained encoder vs the same seed's random encoder</h3>")
    s.body.append(
        table(
            [
                "condition · readout",
                "encoder",
                "random",
                "pixels",
                "pixels' PCA-k",
                "CI of encoder - random",
                "reached",
                "above pixels",
                "loss / pilot loss (gap)",
                "converged",
            ],
            regime,
        )  # fmt: skip
    )
    undecided = extra.get("undecided", [])
    if undecided:
        s.body.append("<h3>Not decided</h3>")
        rows = [[esc(u["paper"]), esc(u["claim"]), esc(u["reason"])] for u in undecided]
        s.body.append(table(["paper", "claim", "why"], rows, "verdicts"))
    stored = extra.get("curves", {})
    for readout, label, view in CURVES:
        lines = _curves(stored, readout)
        if lines:
            png = figures.curves_figure(
                lines, ctx.fig_dir / f"study_curve_{readout}.png", ylabel=f"{label}, held out"
            )
            caption = f"learning curve: {label} ({view}) per checkpoint, mean over seeds"
            if readout == EFFECTIVE_RANK:
                ref = extra.get("references", {})
                caption += (
                    f"; raw pixels {_ref(ref.get('pixels_effective_rank'))}, the world's latent "
                    f"dimension {_ref(ref.get('latent_dimension'))}"
                )
            else:
                caption = caption.replace(f"({view})", f"(linear, {view})")
            s.body.append(img(png, caption))
    return s


def _ref(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.1f}"
