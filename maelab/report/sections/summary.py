"""What we know: the page's first section, in sentences, from the verdict rows the page shows.

Each decided prediction row (agrees or disagrees) in one sentence: its effect beyond the
untrained network with the interval, the placebo and raw contrasts. Then every other prediction
row with why it is undecided, its minimum detectable effect and the seeds an effect of its margin
would take; then the conditions' convergence against their pilots. The page decides nothing:
every number is a stored one, except the seeds estimate, which is arithmetic on stored ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from maelab import stats
from maelab import verdicts as vd
from maelab.report.page import SUMMARY_ID, Section, esc, outcome

TITLE = "What we know"
DECIDED = (stats.AGREES, stats.DISAGREES)
MINUS = "\u2212"  # the sign written in sentences
# why a row without a stored reason is undecided
NO_REASON = {
    stats.REGIME_NOT_REACHED: "the encoder does not beat its untrained network or the pixels' "
    "PCA-k on the row's readout",
    stats.INCONCLUSIVE: "the interval straddles 0 or the margin",
}


def summary_section(sections: Sequence[Section]) -> Section | None:
    """The summary of the prediction rows and regime records the sections show (None: none)."""
    rows, files = _shown(sections)
    regime = [r for f in files for r in f.regime]
    if not rows and not regime:
        return None
    s = Section(SUMMARY_ID, TITLE)
    decided = [v for v in rows if v.outcome in DECIDED]
    undecided = [v for v in rows if v.outcome not in DECIDED]
    s.body.append(
        f"<p>{len(rows)} prediction rows: {len(decided)} decided, {len(undecided)} not. Effects "
        "are the trained network's contrast minus the same seeds' untrained network's (the "
        "placebo); <i>raw</i> is the trained contrast alone. Intervals at each row's "
        "(Holm-adjusted) level; the tables below hold every number.</p>"
    )
    if decided:
        s.body.append("<h3>Decided</h3><ul>" + "".join(
            f"<li>{decided_sentence(v)}</li>" for v in decided) + "</ul>")  # fmt: skip
    if undecided:
        s.body.append(
            "<h3>Not decided, and why</h3><p class='note'>Seeds needed: n × (min detectable / "
            "margin)², rounded up, an estimate from the measured spread that ignores the "
            "change of the t quantile with n.</p><ul>"
            + "".join(f"<li>{undecided_sentence(v)}</li>" for v in undecided)
            + "</ul>"
        )
    if regime:
        s.body.append(f"<p>{convergence_sentence(regime)}</p>")
    return s


def decided_sentence(v: vd.VerdictRecord) -> str:
    """`Claim: agrees, −0.070 [−0.100, −0.040] beyond the untrained network (placebo +0.149,
    raw +0.220), 5 seeds.` (HTML; without a placebo the effect is the trained contrast)."""
    d = decimals(v)
    text = f"{_lead(v)}: {outcome(v.outcome)}, {signed(v.effect, d)} {interval(v.ci, d)}"
    if v.placebo is not None:
        text += f" beyond the untrained network (placebo {signed(v.placebo.effect, d)}"
        text += f", raw {signed(v.raw.effect, d)})" if v.raw is not None else ")"
    return f"{text}, {_seeds(v.n_seeds)}."


def undecided_sentence(v: vd.VerdictRecord) -> str:
    """`Claim: regime not reached (still learning); min detectable ±0.025, an effect of 0.02
    would take ≈ 8 seeds (now 5).` (HTML)."""
    why = v.reason or NO_REASON.get(v.outcome, "")
    text = f"{_lead(v)}: {outcome(v.outcome)}" + (f" ({esc(why)})" if why else "")
    mde = v.min_detectable
    if mde is None or not math.isfinite(mde):
        return f"{text}; {_seeds(v.n_seeds)}."
    if mde == 0:
        return f"{text}; no spread over {_seeds(v.n_seeds)}."
    text += f"; min detectable ±{_plain(mde, decimals(v))}"
    n = seeds_needed(v)
    if n is None:
        return f"{text}, {_seeds(v.n_seeds)}."
    margin = f"{v.margin:g}"
    if n <= v.n_seeds:
        return f"{text}: {_seeds(v.n_seeds)} already detect an effect of {margin}."
    return f"{text}: an effect of {margin} would take ≈ {n} seeds (now {v.n_seeds})."


def seeds_needed(v: vd.VerdictRecord) -> int | None:
    """n × (min detectable / margin)², rounded up: the seeds whose interval would be as narrow as
    the margin, from the measured spread (the t quantile's change with n ignored); None when
    either number is missing or not positive."""
    mde, margin = v.min_detectable, v.margin
    if mde is None or margin is None or not (math.isfinite(mde) and mde > 0 and margin > 0):
        return None
    return math.ceil(v.n_seeds * (mde / margin) ** 2 - 1e-9)


def convergence_sentence(regime: Sequence[vd.RegimeRecord]) -> str:
    """How many conditions converged against their pilot, and the largest loss gap (HTML)."""
    conditions = {r.condition.split(" · ")[0] for r in regime}
    checked = [r for r in regime if r.convergence is not None]
    if not checked:
        return (f"Convergence not checked: no condition has a 3×-longer pilot "
                f"({len(conditions)} conditions).")  # fmt: skip
    ok = sum(bool(r.converged) for r in checked)
    worst = max(checked, key=lambda r: r.convergence.gap)
    text = f"Convergence: {ok} of {len(checked)} conditions with a 3×-longer pilot converged"
    if len(checked) < len(conditions):
        text += f" ({len(conditions) - len(checked)} without a pilot)"
    gap = worst.convergence.gap
    return (f"{text}; the largest loss gap above the pilot is {_pct(gap)} "
            f"({esc(worst.condition.split(' · ')[0])}).")  # fmt: skip


def decimals(v: vd.VerdictRecord) -> int:
    """One precision per row: two significant digits of its interval's half-width (the spread
    says which digits mean something), three decimals when that is missing."""
    hw = v.min_detectable
    if hw is None or not math.isfinite(hw) or hw <= 0:
        return 3
    return max(0, 1 - math.floor(math.log10(hw)))


def signed(x: float, d: int) -> str:
    """+0.149 / −0.070; '–' when missing."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:+.{d}f}".replace("-", MINUS)


def interval(ci: tuple[float, float], d: int) -> str:
    return f"[{signed(ci[0], d)}, {signed(ci[1], d)}]"


def _plain(x: float, d: int) -> str:
    return f"{x:.{d}f}"


def _pct(x: float) -> str:
    return f"{x:+.1%}".replace("-", MINUS)


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _lead(v: vd.VerdictRecord) -> str:
    claim = v.claim[:1].upper() + v.claim[1:]
    return f"<b>{esc(v.paper)}</b>: {esc(claim)}"


def _shown(sections: Sequence[Section]) -> tuple[list[vd.VerdictRecord], list[vd.Verdicts]]:
    """The prediction rows the sections show (a file's row once) and the files they come from."""
    rows: list[vd.VerdictRecord] = []
    files: dict[str, vd.Verdicts] = {}
    seen: set[tuple[str, str]] = set()
    for sec in sections:
        for shown in sec.verdicts:
            files.setdefault(str(shown.path), shown.record)
            for v in shown.rows:
                if v.kind == vd.PREDICTION and (str(shown.path), v.claim) not in seen:
                    seen.add((str(shown.path), v.claim))
                    rows.append(v)
    return rows, list(files.values())
