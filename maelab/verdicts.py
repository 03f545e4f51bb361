"""The study's verdicts as records, and `verdicts.json` (schema 2): build, write, read, validate.

    {"schema": 2, "commit": str, "config_hash": str, "ci_method": str,
     "regime": [{"condition": str, "encoder": float, "pixels": float, "random": float,
                 "ci": [lo, hi]}],                              # ci of encoder - random
     "verdicts": [{"paper": str, "claim": str,
                   "kind": "prediction" | "instrument" | "calibration",
                   "outcome": "agrees" | "disagrees" | "inconclusive" | "regime not reached",
                   "effect": float, "ci": [lo, hi], "n_seeds": int, "per_seed": [float],
                   "control": float (where a control exists), "min_detectable": float,
                   "predicted": "increase" | "decrease" | "differs" | "none", "margin": float,
                   "level": float, "p_holm": float,
                   "expected": outcome, "exact": float,
                   "raw": {"effect", "ci", "per_seed"},             # the trained contrast alone
                   "placebo": {"effect", "ci", "per_seed", "outcome"},  # the untrained network's
                   "positive_control": {"what", "effect", "ci", "per_seed", "detected"},
                   "reason": str}]}                       # control and the last ten: optional
     regime records may add "converged" (bool), "loss", "pilot_loss", "gap", "pilot_readout"
     and "pca" (the whole-image PCA-k of pixels read by the same readout)

Schema 2 adds the calibration kind (`maelab calibrate`: a measurement against an exact answer,
effect = measured - exact, `exact` the answer, `expected` the outcome the row must have), and
the placebo: a prediction row with a placebo is decided on `per_seed` = raw - placebo (the
trained contrast minus the same seeds' untrained contrast), keeps both, and names the positive
control that shows its readout can see an effect of the margin's size. `reason` says why a row
is inconclusive or its regime not reached when a validity rule made it so (`REASONS`). Files of
schema 1 still read.

A number that does not exist (the interval of a single seed) is written as null. Instrument
checks (a probe reading a control latent as zero, a regulariser doing what it optimises) are
decided by the same rule but never count as a paper agreeing: `summary` counts predictions only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from maelab import stats
from maelab.run_folder import VERDICTS_FILE, write_json_atomic
from maelab.verdict_records import (
    ABSENCE,
    EFFECT,
    Contrast,
    ControlRecord,
    Convergence,
    PositiveControl,
    RegimeRecord,
    Row,
    asserts,
    ci_json,
    config_hash,
    finite_or_none,
    git_commit,
    num,
    opt_num,
    pair,
    placebo_same,
    regime_from_json,
    regime_json,
    unseen,
)
from maelab.verdicts_schema import (
    CALIBRATION,
    INSTRUMENT,
    KINDS,
    NO_PILOT,
    PLACEBO,
    PLACEBO_SAME,
    POSITIVE_CONTROL,
    PREDICTION,
    RAW,
    REASONS,
    SCHEMA,
    STILL_LEARNING,
    UNSEEN,
    VERDICT_OPTIONAL,
    VerdictsError,
    validate,
)

__all__ = ["ABSENCE", "EFFECT", "asserts", "placebo_same", "unseen", "CALIBRATION", "PositiveControl", "Row", "Contrast", "ControlRecord", "Convergence", "RegimeRecord", "config_hash", "git_commit", "INSTRUMENT", "KINDS", "NO_PILOT", "PLACEBO_SAME", "PREDICTION", "REASONS",
           "SCHEMA", "STILL_LEARNING", "UNSEEN", "VERDICTS_FILE", "VerdictsError",
           "validate"]  # fmt: skip


@dataclass(frozen=True)
class VerdictRecord:
    """One row of a verdict table: the measured effect, its interval and the outcome."""

    paper: str
    claim: str
    kind: str  # "prediction" | "instrument"
    outcome: str
    effect: float
    ci: tuple[float, float]
    n_seeds: int
    per_seed: tuple[float, ...]
    min_detectable: float
    control: float | None = None  # the same effect in the control condition, where one exists
    predicted: str | None = None  # "increase" | "decrease" | "differs" | "none"
    margin: float | None = None
    level: float | None = None  # confidence level of `ci`
    p_holm: float | None = None  # Holm-adjusted p-value (prediction rows)
    expected: str | None = None  # the outcome the row must have (calibration rows)
    exact: float | None = None  # the exact answer the measurement is compared with
    raw: Contrast | None = None  # the trained contrast alone (rows with a placebo)
    placebo: Contrast | None = None  # the same seeds' untrained networks through the same path
    positive_control: ControlRecord | None = None
    reason: str | None = None  # why a validity rule set the outcome (`REASONS`)
    conditions: tuple[str, ...] | None = None  # the study conditions the row compares

    @property
    def shown_outcome(self) -> str:
        """The outcome with its reason: ``inconclusive (readout cannot see the effect)``."""
        return f"{self.outcome} ({self.reason})" if self.reason else self.outcome

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> VerdictRecord:
        """A stored row read back as it was decided (null numbers become NaN); `decide_table`
        is the only place that makes a new one."""
        optional: dict[str, Any] = {}
        for k in VERDICT_OPTIONAL:
            if k in _TEXT_FIELDS:
                optional[k] = v.get(k)
            elif k in (RAW, PLACEBO):
                optional[k] = None if v.get(k) is None else Contrast.from_json(v[k])
            elif k == POSITIVE_CONTROL:
                optional[k] = None if v.get(k) is None else ControlRecord.from_json(v[k])
            elif k == "conditions":
                optional[k] = None if v.get(k) is None else tuple(v[k])
            else:
                optional[k] = opt_num(v.get(k))
        return cls(
            paper=v["paper"],
            claim=v["claim"],
            kind=v["kind"],
            outcome=v["outcome"],
            effect=float(v["effect"]),
            ci=pair(v["ci"]),
            n_seeds=v["n_seeds"],
            per_seed=tuple(float(x) for x in v["per_seed"]),
            min_detectable=num(v["min_detectable"]),
            **optional,
        )


@dataclass(frozen=True)
class Verdicts:
    """The whole file: provenance, the regime gates and the verdict rows."""

    commit: str
    config_hash: str
    ci_method: str = stats.CI_METHOD
    regime: tuple[RegimeRecord, ...] = ()
    verdicts: tuple[VerdictRecord, ...] = ()
    schema: int = SCHEMA

    def to_json(self) -> dict[str, Any]:
        """The schema-1 object (non-finite numbers become null)."""
        return {
            "schema": self.schema,
            "commit": self.commit,
            "config_hash": self.config_hash,
            "ci_method": self.ci_method,
            "regime": [regime_json(r) for r in self.regime],
            "verdicts": [_verdict_json(v) for v in self.verdicts],
        }

    @classmethod
    def from_json(cls, obj: Any) -> Verdicts:
        """Validate a schema-1 object and build the records (null numbers become NaN)."""
        validate(obj)
        regime = tuple(regime_from_json(r) for r in obj["regime"])
        rows = tuple(VerdictRecord.from_json(v) for v in obj["verdicts"])
        return cls(obj["commit"], obj["config_hash"], obj["ci_method"], regime, rows, obj["schema"])


# ---------------------------------------------------------------- deciding rows
@dataclass(frozen=True)
class Sampling:
    """What a row's paired values range over, and how its interval is taken from them."""

    effect: Callable[[Sequence[float], float], stats.PairedEffect]  # (values, level) -> effect
    ci_method: str  # the rule in one line, as verdicts.json states it
    per_seed: bool  # True: the values are seeds, stored; False: the images of one checkpoint,
    # whose per-image values stay in the experiment's own file (n_seeds = 1, per_seed = [mean])


OVER_SEEDS = Sampling(stats.paired_effect, stats.CI_METHOD, per_seed=True)
OVER_IMAGES = Sampling(stats.bootstrap_effect, stats.BOOTSTRAP_CI_METHOD, per_seed=False)
EXACT = Sampling(stats.exact_effect, stats.EXACT_METHOD, per_seed=True)  # one value vs an answer


def decide_table(
    rows: Sequence[Row], alpha: float = stats.ALPHA, sampling: Sampling = OVER_SEEDS
) -> list[VerdictRecord]:
    """Decide the rows of one table, in order: the one function that makes a verdict.

    A row with a placebo is decided on raw - placebo, seed by seed: what training did beyond what
    the untrained network already shows (`raw` and `placebo` are kept beside). The prediction
    rows whose regime was reached form one Holm family: each gets its interval at the
    Holm-adjusted level (`stats.holm_levels`) and its Holm-adjusted p-value; the raw, placebo
    and positive-control intervals are taken at the same level. Instrument rows and rows whose
    regime was not reached keep the unadjusted 1 - alpha level. `sampling` says how a row's
    paired values give an interval and p-value at a level: Student t over seeds (`OVER_SEEDS`),
    a bootstrap over the images of one checkpoint (`OVER_IMAGES`), or one measurement against
    an exact answer (`EXACT`, calibration rows).

    Two validity rules then apply to prediction rows (docs/theory.md, "How the study decides"):
    a row that asserts an absence or disagrees needs a positive control whose interval excludes
    0, else it reads inconclusive (`UNSEEN`); a row that asserts an effect whose placebo, read
    by the same rule, asserts the same outcome reads inconclusive (`PLACEBO_SAME`).
    """
    effect = sampling.effect
    for i, row in enumerate(rows):
        if row.kind not in KINDS:
            raise ValueError(f"rows[{i}].kind={row.kind!r}: expected one of {', '.join(KINDS)}")
        if row.predicted not in stats.PREDICTIONS:
            options = ", ".join(stats.PREDICTIONS)
            raise ValueError(f"rows[{i}].predicted={row.predicted!r}: expected one of {options}")
        if row.placebo is not None and len(row.placebo) != len(row.per_seed):
            raise ValueError(f"rows[{i}].placebo: {len(row.placebo)} values for "
                             f"{len(row.per_seed)} in per_seed")  # fmt: skip
    decided = [_decided_values(r) for r in rows]
    family = [i for i, r in enumerate(rows) if r.kind == PREDICTION and r.regime_reached]
    p = [effect(decided[i], 1.0 - alpha).p_value for i in family]
    levels = dict(zip(family, stats.holm_levels(p, alpha), strict=True)) if family else {}
    adjusted = dict(zip(family, stats.holm_adjust(p), strict=True)) if family else {}
    out = []
    for i, row in enumerate(rows):
        level = float(levels.get(i, 1.0 - alpha))
        eff = effect(decided[i], level)
        outcome = stats.outcome(eff.lo, eff.hi, row.predicted, row.margin, row.regime_reached)
        raw = placebo = control = None
        if row.placebo is not None:
            raw = _contrast(effect(row.per_seed, level), row.per_seed, sampling)
            pe = effect(row.placebo, level)
            placebo = replace(_contrast(pe, row.placebo, sampling),
                              outcome=stats.outcome(pe.lo, pe.hi, row.predicted, row.margin))  # fmt: skip
        if row.positive_control is not None:
            ce = effect(row.positive_control.per_seed, level)
            c = _contrast(ce, row.positive_control.per_seed, sampling)
            control = ControlRecord(row.positive_control.what, c.effect, c.ci, c.per_seed)
        reason = None if row.regime_reached else row.regime_reason
        if row.kind == PREDICTION:
            outcome, reason = _validity(outcome, reason, eff, row, placebo, control)
        out.append(
            VerdictRecord(
                paper=row.paper,
                claim=row.claim,
                kind=row.kind,
                outcome=outcome,
                effect=eff.mean,
                ci=eff.ci,
                n_seeds=eff.n if sampling.per_seed else 1,
                per_seed=tuple(float(x) for x in decided[i]) if sampling.per_seed else (eff.mean,),
                min_detectable=eff.half_width,
                control=row.control,
                predicted=row.predicted,
                margin=float(row.margin),
                level=level,
                p_holm=float(adjusted[i]) if i in adjusted else None,
                expected=row.expected,
                exact=row.exact,
                raw=raw,
                placebo=placebo,
                positive_control=control,
                reason=reason,
                conditions=tuple(row.conditions) if row.conditions else None,
            )
        )
    return out


def _validity(outcome: str, reason: str | None, eff: stats.PairedEffect, row: Row,
              placebo: Contrast | None, control: ControlRecord | None) -> tuple[str, str | None]:  # fmt: skip
    """The two validity rules of a prediction row (see `decide_table`)."""
    claim = asserts(outcome, row.predicted, eff.lo, eff.hi, row.margin)
    if unseen(claim, outcome, control):
        return stats.INCONCLUSIVE, UNSEEN
    if placebo_same(claim, outcome, row.predicted, row.margin, placebo):
        return stats.INCONCLUSIVE, PLACEBO_SAME
    return outcome, reason


def _decided_values(row: Row) -> list[float]:
    """The values a row is decided on: raw - placebo, seed by seed, or raw without a placebo."""
    if row.placebo is None:
        return [float(x) for x in row.per_seed]
    return [float(a) - float(b) for a, b in zip(row.per_seed, row.placebo, strict=True)]


def _contrast(eff: stats.PairedEffect, values: Sequence[float], sampling: Sampling) -> Contrast:
    kept = tuple(float(x) for x in values) if sampling.per_seed else (eff.mean,)
    return Contrast(eff.mean, eff.ci, kept)


def regime_record(
    condition: str,
    encoder: Sequence[float],
    random: Sequence[float],
    pixels: Sequence[float],
    pca: float | None = None,
    convergence: Convergence | None = None,
) -> RegimeRecord:
    """The gate of one condition from per-seed readouts (same seed order for encoder and random),
    with the pixels' PCA-k and the condition against its pilot where known."""
    gate = stats.regime_gate(encoder, random)
    return RegimeRecord(
        condition=condition,
        encoder=float(sum(encoder) / len(encoder)),
        pixels=float(sum(pixels) / len(pixels)),
        random=float(sum(random) / len(random)),
        ci=gate.ci,
        pca=pca,
        convergence=convergence,
    )


def summary(verdicts: Sequence[VerdictRecord]) -> dict[str, int]:
    """Outcome counts over prediction rows only (instrument checks never count for a paper)."""
    counts = dict.fromkeys(stats.OUTCOMES, 0)
    for v in verdicts:
        if v.kind == PREDICTION:
            counts[v.outcome] += 1
    return counts


# ---------------------------------------------------------------- files
def write_verdicts(path: str | Path, verdicts: Verdicts) -> Path:
    """Validate and write atomically; `path` is the file or a folder (then DIR/verdicts.json)."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / VERDICTS_FILE
    obj = verdicts.to_json()
    validate(obj)
    return write_json_atomic(path, obj)


def read_verdicts(path: str | Path) -> Verdicts:
    """Read and validate a verdicts file (or DIR/verdicts.json)."""
    path = Path(path)
    if path.is_dir():
        path = path / VERDICTS_FILE
    try:
        obj = json.loads(path.read_text())
    except OSError as exc:
        raise VerdictsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise VerdictsError(f"{path}: not JSON ({exc})") from None
    return Verdicts.from_json(obj)


_TEXT_FIELDS = ("predicted", "expected", "reason")  # optional fields that hold words


def _verdict_json(v: VerdictRecord) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "paper": v.paper,
        "claim": v.claim,
        "kind": v.kind,
        "outcome": v.outcome,
        "effect": v.effect,
        "ci": ci_json(v.ci),
        "n_seeds": v.n_seeds,
        "per_seed": [float(x) for x in v.per_seed],
        "min_detectable": finite_or_none(v.min_detectable),
    }
    for key in VERDICT_OPTIONAL:
        value = getattr(v, key)
        if value is None:
            continue
        if key in _TEXT_FIELDS:
            obj[key] = value
        elif key in (RAW, PLACEBO, POSITIVE_CONTROL):
            obj[key] = value.to_json()
        elif key == "conditions":
            obj[key] = list(value)
        else:
            obj[key] = finite_or_none(value)
    return obj
