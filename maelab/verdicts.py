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

import hashlib
import json
import math
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from maelab import stats
from maelab.run_folder import VERDICTS_FILE, write_json_atomic
from maelab.verdicts_schema import (
    CALIBRATION,
    NO_PILOT,
    PLACEBO_SAME,
    REASONS,
    STILL_LEARNING,
    UNSEEN,
    PLACEBO,
    POSITIVE_CONTROL,
    RAW,
    INSTRUMENT,
    KINDS,
    PREDICTION,
    SCHEMA,
    VERDICT_OPTIONAL,
    VerdictsError,
    validate,
)

__all__ = ["CALIBRATION", "INSTRUMENT", "KINDS", "NO_PILOT", "PLACEBO_SAME", "PREDICTION", "REASONS",
           "SCHEMA", "STILL_LEARNING", "UNSEEN", "VERDICTS_FILE", "VerdictsError",
           "validate"]  # fmt: skip




@dataclass(frozen=True)
class Convergence:
    """A condition against its pilot (the same condition trained 3x longer, run once): mean final
    loss over seeds, the pilot's, their relative gap, and the gate readout's mean and pilot."""

    loss: float
    pilot_loss: float
    readout: float
    pilot_readout: float
    loss_tolerance: float  # relative: the loss may sit this far above the pilot's
    readout_margin: float  # the gate readout may sit this far below the pilot's

    @property
    def gap(self) -> float:
        return (self.loss - self.pilot_loss) / self.pilot_loss

    @property
    def converged(self) -> bool:
        return self.gap <= self.loss_tolerance and (
            self.pilot_readout - self.readout <= self.readout_margin
        )


@dataclass(frozen=True)
class RegimeRecord:
    """One condition's regime gate: readout means over seeds and the interval of encoder - random;
    `pca` the whole-image PCA-k of pixels read the same way (a fair pixel baseline), `convergence`
    the condition against its pilot (None: no pilot for this budget, convergence not known)."""

    condition: str
    encoder: float
    pixels: float
    random: float
    ci: tuple[float, float]
    pca: float | None = None
    convergence: Convergence | None = None

    @property
    def reached(self) -> bool:
        """The encoder beats its untrained network (interval above 0) and, where measured, the
        pixels' PCA-k on average."""
        beats_pca = self.pca is None or not math.isfinite(self.pca) or self.encoder > self.pca
        return math.isfinite(self.ci[0]) and self.ci[0] > 0.0 and beats_pca

    @property
    def converged(self) -> bool | None:
        return None if self.convergence is None else self.convergence.converged

    @property
    def above_pca(self) -> bool | None:
        """The encoder beats the pixels' PCA-k on the gate (None: not measured)."""
        return None if self.pca is None else self.encoder > self.pca

    @property
    def above_pixels(self) -> bool:
        """The encoder's mean readout beats raw pixels (the goal; not part of the gate)."""
        return self.encoder > self.pixels


@dataclass(frozen=True)
class Contrast:
    """A row's raw (trained) or placebo (untrained) contrast: mean, interval at the row's level,
    the paired values; a placebo also gets the row's rule applied to it alone (`outcome`)."""

    effect: float
    ci: tuple[float, float]
    per_seed: tuple[float, ...]
    outcome: str | None = None

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"effect": self.effect, "ci": _ci_json(self.ci),
                               "per_seed": [float(x) for x in self.per_seed]}  # fmt: skip
        if self.outcome is not None:
            obj["outcome"] = self.outcome
        return obj

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> Contrast:
        return cls(float(v["effect"]), _pair(v["ci"]), tuple(float(x) for x in v["per_seed"]),
                   v.get("outcome"))  # fmt: skip


@dataclass(frozen=True)
class ControlRecord:
    """A positive control decided: what was constructed, its effect and interval at the row's
    level; `detected` when the interval excludes 0."""

    what: str
    effect: float
    ci: tuple[float, float]
    per_seed: tuple[float, ...]

    @property
    def detected(self) -> bool:
        lo, hi = self.ci
        return math.isfinite(lo) and math.isfinite(hi) and (lo > 0.0 or hi < 0.0)

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "effect": self.effect, "ci": _ci_json(self.ci),
                "per_seed": [float(x) for x in self.per_seed], "detected": self.detected}  # fmt: skip

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> ControlRecord:
        return cls(v["what"], float(v["effect"]), _pair(v["ci"]),
                   tuple(float(x) for x in v["per_seed"]))  # fmt: skip


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
            else:
                optional[k] = _opt_num(v.get(k))
        return cls(
            paper=v["paper"],
            claim=v["claim"],
            kind=v["kind"],
            outcome=v["outcome"],
            effect=float(v["effect"]),
            ci=_pair(v["ci"]),
            n_seeds=v["n_seeds"],
            per_seed=tuple(float(x) for x in v["per_seed"]),
            min_detectable=_num(v["min_detectable"]),
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
            "regime": [_regime_json(r) for r in self.regime],
            "verdicts": [_verdict_json(v) for v in self.verdicts],
        }

    @classmethod
    def from_json(cls, obj: Any) -> Verdicts:
        """Validate a schema-1 object and build the records (null numbers become NaN)."""
        validate(obj)
        regime = tuple(_regime_from_json(r) for r in obj["regime"])
        rows = tuple(VerdictRecord.from_json(v) for v in obj["verdicts"])
        return cls(obj["commit"], obj["config_hash"], obj["ci_method"], regime, rows, obj["schema"])


# ---------------------------------------------------------------- deciding rows
@dataclass(frozen=True)
class Row:
    """What the study measured for one claim, before it is decided.

    `per_seed` holds the paired differences (or the per-seed values of a one-condition check),
    one per training seed; `regime_reached` is the gate of every condition the row compares.
    """

    paper: str
    claim: str
    predicted: str  # "increase" | "decrease" | "differs" | "none"
    margin: float
    per_seed: Sequence[float]
    kind: str = PREDICTION
    regime_reached: bool = True
    control: float | None = None
    expected: str | None = None  # the outcome the row must have (calibration rows)
    exact: float | None = None  # the exact answer (calibration rows: per_seed = measured - exact)
    placebo: Sequence[float] | None = None  # the untrained networks' contrast, paired with per_seed
    positive_control: PositiveControl | None = None
    regime_reason: str | None = None  # why the regime was not reached (`STILL_LEARNING`)


@dataclass(frozen=True)
class PositiveControl:
    """A model with an effect of known size by construction, read by the row's readout on the
    same images, masks and seeds: what it is, and its paired values (one per seed)."""

    what: str
    per_seed: Sequence[float]


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
                per_seed=tuple(float(x) for x in decided[i])
                if sampling.per_seed
                else (eff.mean,),
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
            )
        )
    return out


def asserts(outcome: str, predicted: str, lo: float, hi: float, margin: float) -> str | None:
    """What an outcome asserts: "effect" (an effect of some sign), "absence" (an effect smaller
    than the margin), or None (nothing: inconclusive, regime not reached)."""
    inside = -margin < lo and hi < margin
    if outcome == stats.AGREES:
        return ABSENCE if predicted == stats.PREDICTIONS[3] else EFFECT
    if outcome == stats.DISAGREES:
        return ABSENCE if inside else EFFECT
    return None


EFFECT, ABSENCE = "effect", "absence"


def _validity(outcome: str, reason: str | None, eff: stats.PairedEffect, row: Row,
              placebo: Contrast | None, control: ControlRecord | None) -> tuple[str, str | None]:  # fmt: skip
    """The two validity rules of a prediction row (see `decide_table`)."""
    claim = asserts(outcome, row.predicted, eff.lo, eff.hi, row.margin)
    if claim is None:
        return outcome, reason
    if (claim == ABSENCE or outcome == stats.DISAGREES) and not (control and control.detected):
        return stats.INCONCLUSIVE, UNSEEN
    if claim == EFFECT and placebo is not None and placebo.outcome == outcome:
        lo, hi = placebo.ci
        if asserts(outcome, row.predicted, lo, hi, row.margin) == EFFECT:
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


# ---------------------------------------------------------------- provenance
def git_commit(repo: str | Path | None = None) -> str:
    """`git rev-parse HEAD` of the checkout holding maelab (or `repo`); "unknown" without git."""
    where = Path(repo) if repo is not None else Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else "unknown"


def config_hash(config: Mapping[str, Any] | Any) -> str:
    """A stable 16-hex-digit hash of a resolved config (a mapping or a pydantic model).

    Key order does not matter; the hash is over canonical JSON (sorted keys, no spaces).
    """
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def _pair(ci: list[float | None]) -> tuple[float, float]:
    return (_num(ci[0]), _num(ci[1]))


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _opt_num(x: float | None) -> float | None:
    return None if x is None else float(x)


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _ci_json(ci: tuple[float, float]) -> list[float | None]:
    return [_finite_or_none(ci[0]), _finite_or_none(ci[1])]


def _regime_json(r: RegimeRecord) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "condition": r.condition,
        "encoder": r.encoder,
        "pixels": r.pixels,
        "random": r.random,
        "ci": _ci_json(r.ci),
    }
    if r.pca is not None:
        obj["pca"] = _finite_or_none(r.pca)
    c = r.convergence
    if c is not None:
        obj.update(converged=c.converged, loss=c.loss, pilot_loss=c.pilot_loss, gap=c.gap,
                   readout=c.readout, pilot_readout=c.pilot_readout,
                   loss_tolerance=c.loss_tolerance, readout_margin=c.readout_margin)  # fmt: skip
    return obj


def _regime_from_json(r: dict[str, Any]) -> RegimeRecord:
    convergence = None
    if r.get("pilot_loss") is not None:
        convergence = Convergence(
            float(r["loss"]), float(r["pilot_loss"]), float(r["readout"]),
            float(r["pilot_readout"]), float(r["loss_tolerance"]), float(r["readout_margin"]),
        )  # fmt: skip
    return RegimeRecord(r["condition"], float(r["encoder"]), float(r["pixels"]),
                        float(r["random"]), _pair(r["ci"]), _opt_num(r.get("pca")),
                        convergence)  # fmt: skip


def _verdict_json(v: VerdictRecord) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "paper": v.paper,
        "claim": v.claim,
        "kind": v.kind,
        "outcome": v.outcome,
        "effect": v.effect,
        "ci": [_finite_or_none(v.ci[0]), _finite_or_none(v.ci[1])],
        "n_seeds": v.n_seeds,
        "per_seed": [float(x) for x in v.per_seed],
        "min_detectable": _finite_or_none(v.min_detectable),
    }
    for key in VERDICT_OPTIONAL:
        value = getattr(v, key)
        if value is None:
            continue
        if key in _TEXT_FIELDS:
            obj[key] = value
        elif key in (RAW, PLACEBO, POSITIVE_CONTROL):
            obj[key] = value.to_json()
        else:
            obj[key] = _finite_or_none(value)
    return obj
