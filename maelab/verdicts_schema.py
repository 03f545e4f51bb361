"""The schema of `verdicts.json` (version 2; version 1 files still read): one check per field, each failure naming the field.

`maelab.verdicts` builds, writes and reads the file; this module only says whether an object
follows the schema (the layout is in maelab.verdicts' docstring and docs/theory.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from maelab import stats

SCHEMA = 2
READABLE_SCHEMAS = (1, 2)  # version 2 adds the calibration kind, `expected` / `exact`, the
# placebo (`raw`, `placebo`), the positive control, `reason`, and convergence in the regime
PREDICTION, INSTRUMENT = "prediction", "instrument"  # a paper's claim / a check of the tools
CALIBRATION = "calibration"  # the pipeline against an exact answer (maelab calibrate)
KINDS: tuple[str, ...] = (PREDICTION, INSTRUMENT, CALIBRATION)


class VerdictsError(ValueError):
    """verdicts.json does not follow the schema; the message names the field."""


# ---------------------------------------------------------------- validation
_TOP = ("schema", "commit", "config_hash", "ci_method", "regime", "verdicts")
_REGIME = ("condition", "encoder", "pixels", "random", "ci")
_VERDICT = (
    "paper", "claim", "kind", "outcome", "effect", "ci", "n_seeds", "per_seed", "min_detectable",
)  # fmt: skip
RAW, PLACEBO, POSITIVE_CONTROL = "raw", "placebo", "positive_control"
VERDICT_OPTIONAL = (
    "control", "predicted", "margin", "level", "p_holm", "expected", "exact", RAW, PLACEBO,
    POSITIVE_CONTROL, "reason", "conditions",
)  # fmt: skip
# expected: the outcome the row must have (a calibration row misses when it differs);
# exact: the exact answer a calibration row's measurement is compared with;
# raw / placebo: the trained and the untrained contrast (per_seed = raw - placebo);
# positive_control: a constructed effect read the same way; reason: why a rule set the outcome;
# conditions: the study conditions the row compares (their regime records carry convergence)
STILL_LEARNING = "still learning"  # a condition's loss or gate is short of its 3x-longer pilot
NO_PILOT = "convergence not checked: no pilot"  # no 3x-longer pilot of this budget exists
UNSEEN = "readout cannot see the effect"  # no detected positive control for an absence
PLACEBO_SAME = "the untrained network gives the same outcome"  # the placebo asserts it too
REASONS = (STILL_LEARNING, NO_PILOT, UNSEEN, PLACEBO_SAME)
_CONTRAST = ("effect", "ci", "per_seed")
_CONTROL = ("what", "effect", "ci", "per_seed", "detected")
_REGIME_OPTIONAL = (
    "pca", "converged", "loss", "pilot_loss", "gap", "readout", "pilot_readout", "loss_tolerance",
    "readout_margin",
)  # fmt: skip


def validate(obj: Any) -> None:
    """Raise VerdictsError with a one-line message naming the first bad field."""
    _require_object(obj, "verdicts.json", _TOP, ())
    if obj["schema"] not in READABLE_SCHEMAS or isinstance(obj["schema"], bool):
        raise VerdictsError(
            f"schema: expected one of {', '.join(map(str, READABLE_SCHEMAS))}, got {obj['schema']!r}"
        )
    for key in ("commit", "config_hash", "ci_method"):
        _string(obj[key], key)
    for name, items, check in (
        ("regime", obj["regime"], _check_regime),
        ("verdicts", obj["verdicts"], _check_verdict),
    ):
        if not isinstance(items, list):
            raise VerdictsError(f"{name}: expected a list, got {type(items).__name__}")
        for i, item in enumerate(items):
            check(item, f"{name}[{i}]")


def _check_regime(r: Any, where: str) -> None:
    _require_object(r, where, _REGIME, _REGIME_OPTIONAL)
    _string(r["condition"], f"{where}.condition")
    for key in ("encoder", "pixels", "random"):
        _number(r[key], f"{where}.{key}", nullable=False)
    _interval(r["ci"], f"{where}.ci")
    for key in _REGIME_OPTIONAL:
        if key == "converged":
            if r.get(key) is not None and not isinstance(r[key], bool):
                raise VerdictsError(f"{where}.converged: expected true, false or null")
        elif r.get(key) is not None:
            _number(r[key], f"{where}.{key}")


def _check_contrast(c: Any, where: str, n: int, required: tuple[str, ...],
                    optional: tuple[str, ...] = ()) -> list[float]:  # fmt: skip
    """A raw / placebo / positive-control object: its numbers, n paired values, its mean."""
    _require_object(c, where, required, optional)
    _number(c["effect"], f"{where}.effect", nullable=False)
    _interval(c["ci"], f"{where}.ci")
    values = c["per_seed"]
    if not isinstance(values, list) or len(values) != n:
        raise VerdictsError(f"{where}.per_seed: expected a list of n_seeds={n} numbers")
    for j, x in enumerate(values):
        _number(x, f"{where}.per_seed[{j}]", nullable=False)
    return values


def _check_verdict(v: Any, where: str) -> None:
    _require_object(v, where, _VERDICT, VERDICT_OPTIONAL)
    for key in ("paper", "claim"):
        _string(v[key], f"{where}.{key}")
    _choice(v["kind"], KINDS, f"{where}.kind")
    _choice(v["outcome"], stats.OUTCOMES, f"{where}.outcome")
    _number(v["effect"], f"{where}.effect", nullable=False)
    _interval(v["ci"], f"{where}.ci")
    n = v["n_seeds"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise VerdictsError(f"{where}.n_seeds: expected an integer >= 1, got {n!r}")
    per_seed = v["per_seed"]
    if not isinstance(per_seed, list) or len(per_seed) != n:
        raise VerdictsError(f"{where}.per_seed: expected a list of n_seeds={n} numbers")
    for j, x in enumerate(per_seed):
        _number(x, f"{where}.per_seed[{j}]", nullable=False)
    mean = sum(per_seed) / n
    if abs(v["effect"] - mean) > 1e-9 * max(1.0, abs(mean)):
        raise VerdictsError(
            f"{where}.effect: {v['effect']!r} is not the mean of per_seed ({mean!r})"
        )
    lo, hi = v["ci"]
    if lo is not None and hi is not None and not lo <= v["effect"] <= hi:
        raise VerdictsError(f"{where}.ci: [{lo}, {hi}] does not contain effect {v['effect']}")
    _number(v["min_detectable"], f"{where}.min_detectable")
    for key in ("control", "margin", "level", "p_holm", "exact"):
        if v.get(key) is not None:
            _number(v[key], f"{where}.{key}")
    if v.get("predicted") is not None:
        _choice(v["predicted"], stats.PREDICTIONS, f"{where}.predicted")
    if v.get("expected") is not None:
        _choice(v["expected"], stats.OUTCOMES, f"{where}.expected")
    if v.get("conditions") is not None:
        if not isinstance(v["conditions"], list):
            raise VerdictsError(f"{where}.conditions: expected a list of condition names")
        for j, c in enumerate(v["conditions"]):
            _string(c, f"{where}.conditions[{j}]")
    if v.get("reason") is not None:
        _choice(v["reason"], REASONS, f"{where}.reason")
    if v.get(POSITIVE_CONTROL) is not None:
        pc = v[POSITIVE_CONTROL]
        _check_contrast(pc, f"{where}.{POSITIVE_CONTROL}", n, _CONTROL)
        _string(pc["what"], f"{where}.{POSITIVE_CONTROL}.what")
        if not isinstance(pc["detected"], bool):
            raise VerdictsError(f"{where}.{POSITIVE_CONTROL}.detected: expected true or false")
    if (v.get(RAW) is None) != (v.get(PLACEBO) is None):
        raise VerdictsError(f"{where}: raw and placebo come together (one is missing)")
    if v.get(RAW) is not None:
        raw = _check_contrast(v[RAW], f"{where}.{RAW}", n, _CONTRAST)
        placebo = _check_contrast(v[PLACEBO], f"{where}.{PLACEBO}", n, _CONTRAST, ("outcome",))
        if v[PLACEBO].get("outcome") is not None:
            _choice(v[PLACEBO]["outcome"], stats.OUTCOMES, f"{where}.{PLACEBO}.outcome")
        for j, (d, a, b) in enumerate(zip(per_seed, raw, placebo, strict=True)):
            if abs(d - (a - b)) > 1e-9 * max(1.0, abs(a), abs(b)):
                raise VerdictsError(
                    f"{where}.per_seed[{j}]: {d!r} is not raw - placebo ({a!r} - {b!r})"
                )


def _require_object(obj: Any, where: str, required: Sequence[str], optional: Sequence[str]) -> None:
    if not isinstance(obj, dict):
        raise VerdictsError(f"{where}: expected an object, got {type(obj).__name__}")
    for key in required:
        if key not in obj:
            raise VerdictsError(f"{where}.{key}: missing")
    for key in obj:
        if key not in required and key not in optional:
            raise VerdictsError(f"{where}.{key}: unknown field (schema {SCHEMA})")


def _string(x: Any, where: str) -> None:
    if not isinstance(x, str) or not x:
        raise VerdictsError(f"{where}: expected a non-empty string, got {x!r}")


def _choice(x: Any, options: Sequence[str], where: str) -> None:
    if x not in options:
        raise VerdictsError(f"{where}: expected one of {', '.join(options)}, got {x!r}")


def _number(x: Any, where: str, nullable: bool = True) -> None:
    if x is None and nullable:
        return
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise VerdictsError(f"{where}: expected a finite number{' or null' * nullable}, got {x!r}")


def _interval(x: Any, where: str) -> None:
    if not isinstance(x, list) or len(x) != 2:
        raise VerdictsError(f"{where}: expected [lo, hi], got {x!r}")
    _number(x[0], f"{where}[0]")
    _number(x[1], f"{where}[1]")
    if x[0] is not None and x[1] is not None and x[0] > x[1]:
        raise VerdictsError(f"{where}: lo {x[0]} > hi {x[1]}")
