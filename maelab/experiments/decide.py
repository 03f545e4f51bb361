"""Decide a declared study from its measurements: gate every condition, derive each row's
direction, pair the runs over seeds and hand the rows to `maelab.verdicts.decide_table` (the
one function that makes a verdict, with the rule of docs/theory.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maelab import verdicts as vd
from maelab.experiments.declaration import (
    DECREASE,
    INCREASE,
    NONE,
    R2,
    Gate,
    RowSpec,
    Study,
    Undecided,
)
from maelab.experiments.measurements import Measurements
from maelab.metric_names import FINAL_LOSS, shared

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


LOSS_TOLERANCE = 0.05  # a condition's final loss may sit 5% above its 3x-longer pilot's
Pilots = Mapping[str, Mapping[str, float]]  # condition -> {"loss", "readout"} of its pilot


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def gate(m: Measurements, condition: str, g: Gate, pilot: Mapping[str, float] | None = None,
         margin: float = R2.value) -> vd.RegimeRecord | None:  # fmt: skip
    """The regime record of one condition on one gate (None when it has no runs, or its runs
    lack the readout: real images have no latents), with the pixels' PCA-k where the gate names
    it and, given the condition's pilot, its convergence (mean final loss and gate readout
    against the pilot's)."""
    seeds = m.seeds(condition)
    if not seeds:
        return None
    encoder, random = m.values(condition, g.encoder, seeds), m.values(condition, g.random, seeds)
    if any(math.isnan(x) for x in (*encoder, *random)):
        return None
    pixels = m.values(condition, g.pixels, seeds)
    pca = _mean(m.values(condition, g.pca, seeds)) if g.pca else None
    convergence = None
    if pilot is not None:
        loss = _mean(m.values(condition, FINAL_LOSS, seeds))
        convergence = vd.Convergence(loss, float(pilot["loss"]), _mean(encoder),
                                     float(pilot["readout"]), LOSS_TOLERANCE, margin)  # fmt: skip
    return vd.regime_record(f"{condition} · {g.label}", encoder, random, pixels,
                            None if pca is None or math.isnan(pca) else pca, convergence)  # fmt: skip


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


def decide(study: Study, m: Measurements, pilots: Pilots | None = None) -> Decision:
    """Regime records of every condition on every gate, the decided rows (one Holm family) and
    the rows that could not be measured, with the study's own undecided claims.

    A prediction row is decided on its trained contrast minus the same contrast of the same
    seeds' untrained networks (its placebo), with its positive control where it names one. A
    condition counts only when it converged: compared on the study's `pilot_gate`, a condition
    without a pilot in `pilots`, or short of it, puts its gated rows in "regime not reached".
    """
    regime: list[vd.RegimeRecord] = []
    reached: dict[tuple[str, str], bool] = {}
    converged: dict[str, bool | None] = {}
    for cond in study.conditions:
        for name, g in study.gates.items():
            pilot = (pilots or {}).get(cond) if name == study.pilot_gate else None
            rec = gate(m, cond, g, pilot)
            if rec is not None:
                regime.append(rec)
                reached[(cond, name)] = rec.reached
                if name == study.pilot_gate:
                    converged[cond] = rec.converged
    rows, derived, undecided = [], {}, []
    for spec in study.rows:
        missing = [n for n in spec.conditions if not m.has(n)]
        if missing:
            undecided.append(Undecided(spec.paper, spec.claim, f"no runs of {', '.join(missing)}"))
            continue
        seeds = m.seeds(*spec.conditions)
        per_seed = spec.value(m, spec.treated, spec.control, seeds)
        placebo = _placebo(spec, m, seeds)
        if any(math.isnan(x) for x in (*per_seed, *(placebo or ()))):
            undecided.append(Undecided(spec.paper, spec.claim, "a readout is missing (nan)"))
            continue
        predicted, words = derive(spec, m, seeds)
        ok = all(reached.get((n, g), False) for n in spec.conditions for g in spec.gates)
        why = None
        if spec.kind == vd.PREDICTION:  # a prediction counts only where its conditions converged
            state = [converged.get(n) for n in spec.conditions]
            if any(c is None for c in state):
                ok, why = False, vd.NO_PILOT
            elif not all(state):
                ok, why = False, vd.STILL_LEARNING
        control = None
        if spec.show_control and spec.control:
            control = _mean(m.values(spec.control, spec.show_control, seeds))
        rows.append(vd.Row(spec.paper, spec.claim, predicted, spec.margin.value, per_seed,
                           spec.kind, ok, control, placebo=placebo,
                           positive_control=_positive(spec, m, seeds),
                           regime_reason=why, conditions=spec.conditions))  # fmt: skip
        derived[spec.claim] = words
    undecided.extend(study.undecided)
    return Decision(regime, vd.decide_table(rows), derived, undecided)


def _placebo(spec: RowSpec, m: Measurements, seeds: list[int]) -> list[float] | None:
    """The row's value read from the untrained networks (prediction rows): the same seed's
    untrained network for a contrast, seed s + 100's against seed s's for a row that is already
    trained - untrained."""
    if spec.kind != vd.PREDICTION or not hasattr(spec.value, "untrained"):
        return None
    return spec.value.untrained()(m, spec.treated, spec.control, seeds)


def _positive(spec: RowSpec, m: Measurements, seeds: list[int]) -> vd.PositiveControl | None:
    if spec.positive is None:
        return None
    values = m.values(spec.positive_condition, spec.positive, seeds)
    if any(math.isnan(x) for x in values):
        return None
    return vd.PositiveControl(spec.positive_what, values)


def format_decision(decision: Decision) -> str:
    """The verdict table as text: paper | claim | derived prediction | effect [CI] (trained -
    untrained where a placebo exists) | raw | placebo | positive control | n | min detectable |
    outcome (reason); instrument checks, the regime and undecided rows apart."""
    lines = ["paper | claim | derived prediction | effect [CI] | raw | placebo | positive control "
             "| n | min det. | outcome"]  # fmt: skip
    for kind in vd.KINDS:
        rows = [v for v in decision.verdicts if v.kind == kind]
        if kind in KIND_HEADINGS and (rows or kind == vd.INSTRUMENT):
            lines.append(KIND_HEADINGS[kind])
        for v in rows:
            raw = f"{v.raw.effect:+.4f}" if v.raw else "-"
            placebo = f"{v.placebo.effect:+.4f} ({v.placebo.outcome})" if v.placebo else "-"
            pc = v.positive_control
            shown = (
                f"{pc.effect:+.4f} {_ci(pc.ci)} {'seen' if pc.detected else 'not seen'}"
                if pc
                else "-"
            )
            lines.append(
                f"{v.paper} | {v.claim} | {decision.derived.get(v.claim, v.predicted)} | "
                f"{v.effect:+.4f} {_ci(v.ci)} | {raw} | {placebo} | {shown} | {v.n_seeds} | "
                f"{v.min_detectable:.4f} | {v.shown_outcome}"
            )
    lines.append("regime (condition · readout | encoder | random | pixels | pixels PCA-k | "
                 "CI enc - rnd | reached | loss / pilot's (gap) | converged)")  # fmt: skip
    for r in decision.regime:
        pca = "-" if r.pca is None else f"{r.pca:.3f}"
        c = r.convergence
        conv = (
            "- | not checked"
            if c is None
            else (
                f"{c.loss:.4f} / {c.pilot_loss:.4f} ({c.gap:+.1%}) | {'yes' if c.converged else 'no'}"
            )
        )
        lines.append(
            f"{r.condition} | {r.encoder:.3f} | {r.random:.3f} | {r.pixels:.3f} | {pca} | "
            f"{_ci(r.ci)} | {'yes' if r.reached else 'no'}"
            f"{' (above pixels)' if r.above_pixels else ''} | {conv}"
        )
    for u in decision.undecided:
        lines.append(f"not decided: {u.paper} | {u.claim} | {u.reason}")
    return "\n".join(lines)


def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def as_json(decision: Decision) -> dict[str, Any]:
    """The parts of a decision that study.json keeps beside verdicts.json."""
    return {"derived": decision.derived, "undecided": [vars(u) for u in decision.undecided]}
