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
                   "expected": outcome, "exact": float}]}  # control and the last six: optional

Schema 2 adds the calibration kind (`maelab calibrate`: a measurement against an exact answer,
effect = measured - exact, `exact` the answer, `expected` the outcome the row must have); files
of schema 1 still read.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maelab import stats
from maelab.run_folder import VERDICTS_FILE, write_json_atomic
from maelab.verdicts_schema import (
    CALIBRATION,
    INSTRUMENT,
    KINDS,
    PREDICTION,
    SCHEMA,
    VERDICT_OPTIONAL,
    VerdictsError,
    validate,
)

__all__ = ["CALIBRATION", "INSTRUMENT", "KINDS", "PREDICTION", "SCHEMA", "VERDICTS_FILE", "VerdictsError",
           "validate"]  # fmt: skip


@dataclass(frozen=True)
class RegimeRecord:
    """One condition's regime gate: readout means over seeds and the interval of encoder - random."""

    condition: str
    encoder: float
    pixels: float
    random: float
    ci: tuple[float, float]

    @property
    def reached(self) -> bool:
        return math.isfinite(self.ci[0]) and self.ci[0] > 0.0

    @property
    def above_pixels(self) -> bool:
        """The encoder's mean readout beats raw pixels (the goal; not part of the gate)."""
        return self.encoder > self.pixels


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

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> VerdictRecord:
        """A stored row read back as it was decided (null numbers become NaN); `decide_table`
        is the only place that makes a new one."""
        optional = {
            k: v.get(k) if k in _TEXT_FIELDS else _opt_num(v.get(k)) for k in VERDICT_OPTIONAL
        }
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
        regime = tuple(
            RegimeRecord(
                r["condition"], float(r["encoder"]), float(r["pixels"]), float(r["random"]),
                _pair(r["ci"]),
            )
            for r in obj["regime"]
        )  # fmt: skip
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

    The prediction rows whose regime was reached form one Holm family: each gets its interval at
    the Holm-adjusted level (`stats.holm_levels`) and its Holm-adjusted p-value. Instrument rows
    and rows whose regime was not reached keep the unadjusted 1 - alpha level. `sampling` says
    how a row's paired values give an interval and p-value at a level: Student t over seeds
    (`OVER_SEEDS`), a bootstrap over the images of one checkpoint (`OVER_IMAGES`), or one
    measurement against an exact answer (`EXACT`, calibration rows).
    """
    effect = sampling.effect
    for i, row in enumerate(rows):
        if row.kind not in KINDS:
            raise ValueError(f"rows[{i}].kind={row.kind!r}: expected one of {', '.join(KINDS)}")
        if row.predicted not in stats.PREDICTIONS:
            options = ", ".join(stats.PREDICTIONS)
            raise ValueError(f"rows[{i}].predicted={row.predicted!r}: expected one of {options}")
    family = [i for i, r in enumerate(rows) if r.kind == PREDICTION and r.regime_reached]
    p = [effect(rows[i].per_seed, 1.0 - alpha).p_value for i in family]
    levels = dict(zip(family, stats.holm_levels(p, alpha), strict=True)) if family else {}
    adjusted = dict(zip(family, stats.holm_adjust(p), strict=True)) if family else {}
    out = []
    for i, row in enumerate(rows):
        level = float(levels.get(i, 1.0 - alpha))
        eff = effect(row.per_seed, level)
        out.append(
            VerdictRecord(
                paper=row.paper,
                claim=row.claim,
                kind=row.kind,
                outcome=stats.outcome(
                    eff.lo, eff.hi, row.predicted, row.margin, row.regime_reached
                ),
                effect=eff.mean,
                ci=eff.ci,
                n_seeds=eff.n if sampling.per_seed else 1,
                per_seed=tuple(float(x) for x in row.per_seed)
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
            )
        )
    return out


def regime_record(
    condition: str, encoder: Sequence[float], random: Sequence[float], pixels: Sequence[float]
) -> RegimeRecord:
    """The gate of one condition from per-seed readouts (same seed order for encoder and random)."""
    gate = stats.regime_gate(encoder, random)
    return RegimeRecord(
        condition=condition,
        encoder=float(sum(encoder) / len(encoder)),
        pixels=float(sum(pixels) / len(pixels)),
        random=float(sum(random) / len(random)),
        ci=gate.ci,
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


_TEXT_FIELDS = ("predicted", "expected")  # optional fields that hold words, not numbers


def _pair(ci: list[float | None]) -> tuple[float, float]:
    return (_num(ci[0]), _num(ci[1]))


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _opt_num(x: float | None) -> float | None:
    return None if x is None else float(x)


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _regime_json(r: RegimeRecord) -> dict[str, Any]:
    return {
        "condition": r.condition,
        "encoder": r.encoder,
        "pixels": r.pixels,
        "random": r.random,
        "ci": [_finite_or_none(r.ci[0]), _finite_or_none(r.ci[1])],
    }


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
        if value is not None:
            obj[key] = value if key in _TEXT_FIELDS else _finite_or_none(value)
    return obj
