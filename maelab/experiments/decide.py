"""Decide a declared study from its measurements: gate every condition, derive each row's
direction, pair the runs over seeds and hand the rows to `maelab.verdicts.decide_table` (the
one function that makes a verdict, with the rule of docs/theory.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from maelab import verdicts as vd
from maelab.experiments.declaration import (
    DECREASE,
    INCREASE,
    NONE,
    Gate,
    RowSpec,
    Study,
    Undecided,
)
from maelab.experiments.measurements import Measurements
from maelab.metric_names import shared

SHARED_TIE = 0.05  # shares of shared nodes closer than this predict no difference
KIND_HEADINGS = {  # the text table's heading of each kind of row after the predictions
    vd.INSTRUMENT: "instrument checks (never count for a paper):",
    vd.CALIBRATION: "calibration rows (the pipeline against exact answers):",
}


@dataclass
class Decision:
    """A study decided: regime records, verdict rows, derived predictions, undecided claims."""

    regime: list[vd.RegimeRecord]
    verdicts: list[vd.VerdictRecord]
    derived: dict[str, str] = field(default_factory=dict)  # claim -> the prediction in words
    undecided: list[Undecided] = field(default_factory=list)

    def extend(self, other: Decision) -> Decision:
        """Another table after this one (its own Holm family, decided apart)."""
        return Decision(
            [*self.regime, *other.regime],
            [*self.verdicts, *other.verdicts],
            {**self.derived, **other.derived},
            [*self.undecided, *other.undecided],
        )


def gate(m: Measurements, condition: str, g: Gate) -> vd.RegimeRecord | None:
    """The regime record of one condition on one gate (None when it has no runs, or its runs
    lack the readout: real images have no latents)."""
    seeds = m.seeds(condition)
    if not seeds:
        return None
    encoder, random = m.values(condition, g.encoder, seeds), m.values(condition, g.random, seeds)
    if any(math.isnan(x) for x in (*encoder, *random)):
        return None
    pixels = m.values(condition, g.pixels, seeds)
    return vd.regime_record(f"{condition} · {g.label}", encoder, random, pixels)


def direction_from_shares(treated: float, control: float) -> str:
    """The predicted direction of a readout when a latent is shared more (or less) often."""
    if math.isnan(treated) or math.isnan(control) or abs(treated - control) < SHARED_TIE:
        return NONE
    return INCREASE if treated > control else DECREASE


def derive(spec: RowSpec, m: Measurements, seeds: list[int]) -> tuple[str, str]:
    """(predicted direction, the prediction in words) for a row."""
    if spec.shared is None or spec.control is None:
        return spec.predicted or NONE, spec.predicted or NONE
    key = shared(spec.shared)
    t = sum(m.values(spec.treated, key, seeds)) / len(seeds)
    c = sum(m.values(spec.control, key, seeds)) / len(seeds)
    direction = direction_from_shares(t, c)
    words = (
        f"{spec.shared} shared in {t:.0%} ({spec.treated}) vs {c:.0%} ({spec.control}): {direction}"
    )
    return direction, words


def decide(study: Study, m: Measurements) -> Decision:
    """Regime records of every condition on every gate, the decided rows (one Holm family) and
    the rows that could not be measured, with the study's own undecided claims."""
    regime: list[vd.RegimeRecord] = []
    reached: dict[tuple[str, str], bool] = {}
    for cond in study.conditions:
        for name, g in study.gates.items():
            rec = gate(m, cond, g)
            if rec is not None:
                regime.append(rec)
                reached[(cond, name)] = rec.reached
    rows, derived, undecided = [], {}, []
    for spec in study.rows:
        missing = [n for n in spec.conditions if not m.has(n)]
        if missing:
            undecided.append(Undecided(spec.paper, spec.claim, f"no runs of {', '.join(missing)}"))
            continue
        seeds = m.seeds(*spec.conditions)
        per_seed = spec.value(m, spec.treated, spec.control, seeds)
        if any(math.isnan(x) for x in per_seed):
            undecided.append(Undecided(spec.paper, spec.claim, "a readout is missing (nan)"))
            continue
        predicted, words = derive(spec, m, seeds)
        ok = all(reached.get((n, g), False) for n in spec.conditions for g in spec.gates)
        control = None
        if spec.show_control and spec.control:
            values = m.values(spec.control, spec.show_control, seeds)
            control = sum(values) / len(values)
        rows.append(vd.Row(spec.paper, spec.claim, predicted, spec.margin.value, per_seed,
                           spec.kind, ok, control))  # fmt: skip
        derived[spec.claim] = words
    undecided.extend(study.undecided)
    return Decision(regime, vd.decide_table(rows), derived, undecided)


def format_decision(decision: Decision) -> str:
    """The verdict table as text: paper | claim | derived prediction | effect [CI] | n | min
    detectable | outcome; instrument checks, the regime and undecided rows apart."""
    lines = ["paper | claim | derived prediction | effect [CI] | n | min det. | outcome"]
    for kind in vd.KINDS:
        rows = [v for v in decision.verdicts if v.kind == kind]
        if kind in KIND_HEADINGS and (rows or kind == vd.INSTRUMENT):
            lines.append(KIND_HEADINGS[kind])
        for v in rows:
            lo, hi = v.ci
            lines.append(
                f"{v.paper} | {v.claim} | {decision.derived.get(v.claim, v.predicted)} | "
                f"{v.effect:+.4f} [{lo:+.4f}, {hi:+.4f}] | {v.n_seeds} | "
                f"{v.min_detectable:.4f} | {v.outcome}"
            )
    lines.append(
        "regime (condition · readout | encoder | random | pixels | CI enc - rnd | reached)"
    )
    for r in decision.regime:
        lines.append(
            f"{r.condition} | {r.encoder:.3f} | {r.random:.3f} | {r.pixels:.3f} | "
            f"[{r.ci[0]:+.4f}, {r.ci[1]:+.4f}] | {'yes' if r.reached else 'no'}"
            f"{' (above pixels)' if r.above_pixels else ''}"
        )
    for u in decision.undecided:
        lines.append(f"not decided: {u.paper} | {u.claim} | {u.reason}")
    return "\n".join(lines)


def as_json(decision: Decision) -> dict[str, Any]:
    """The parts of a decision that study.json keeps beside verdicts.json."""
    return {"derived": decision.derived, "undecided": [vars(u) for u in decision.undecided]}
