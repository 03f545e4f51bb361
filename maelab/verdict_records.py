"""The records of `verdicts.json` that need no deciding: a condition's regime gate (with its
convergence against a pilot and the pixels' PCA-k), a row's raw / placebo contrast and its
positive control, the two validity rules read off them (`unseen`, `placebo_same`), provenance
(commit, config hash), and the JSON helpers they share.
`maelab.verdicts` decides rows and writes the file; its docstring has the layout."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maelab import stats
from maelab.verdicts_schema import PREDICTION


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
        obj: dict[str, Any] = {"effect": self.effect, "ci": ci_json(self.ci),
                               "per_seed": [float(x) for x in self.per_seed]}  # fmt: skip
        if self.outcome is not None:
            obj["outcome"] = self.outcome
        return obj

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> Contrast:
        return cls(float(v["effect"]), pair(v["ci"]), tuple(float(x) for x in v["per_seed"]),
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
        return {"what": self.what, "effect": self.effect, "ci": ci_json(self.ci),
                "per_seed": [float(x) for x in self.per_seed], "detected": self.detected}  # fmt: skip

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> ControlRecord:
        return cls(v["what"], float(v["effect"]), pair(v["ci"]),
                   tuple(float(x) for x in v["per_seed"]))  # fmt: skip


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


def pair(ci: list[float | None]) -> tuple[float, float]:
    return (num(ci[0]), num(ci[1]))


def num(x: float | None) -> float:
    return math.nan if x is None else float(x)


def opt_num(x: float | None) -> float | None:
    return None if x is None else float(x)


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def ci_json(ci: tuple[float, float]) -> list[float | None]:
    return [finite_or_none(ci[0]), finite_or_none(ci[1])]


def regime_json(r: RegimeRecord) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "condition": r.condition,
        "encoder": r.encoder,
        "pixels": r.pixels,
        "random": r.random,
        "ci": ci_json(r.ci),
    }
    if r.pca is not None:
        obj["pca"] = finite_or_none(r.pca)
    c = r.convergence
    if c is not None:
        obj.update(converged=c.converged, loss=c.loss, pilot_loss=c.pilot_loss, gap=c.gap,
                   readout=c.readout, pilot_readout=c.pilot_readout,
                   loss_tolerance=c.loss_tolerance, readout_margin=c.readout_margin)  # fmt: skip
    return obj


def regime_from_json(r: dict[str, Any]) -> RegimeRecord:
    convergence = None
    if r.get("pilot_loss") is not None:
        convergence = Convergence(
            float(r["loss"]), float(r["pilot_loss"]), float(r["readout"]),
            float(r["pilot_readout"]), float(r["loss_tolerance"]), float(r["readout_margin"]),
        )  # fmt: skip
    return RegimeRecord(r["condition"], float(r["encoder"]), float(r["pixels"]),
                        float(r["random"]), pair(r["ci"]), opt_num(r.get("pca")),
                        convergence)  # fmt: skip


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
    conditions: Sequence[str] = ()  # the study conditions compared (stored with the verdict)


@dataclass(frozen=True)
class PositiveControl:
    """A model with an effect of known size by construction, read by the row's readout on the
    same images, masks and seeds: what it is, and its paired values (one per seed)."""

    what: str
    per_seed: Sequence[float]


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


def unseen(claim: str | None, outcome: str, control: ControlRecord | None) -> bool:
    """An absence or a disagreement asserted without a detected positive control."""
    asserting = claim == ABSENCE or (claim is not None and outcome == stats.DISAGREES)
    return asserting and not (control is not None and control.detected)


def placebo_same(claim: str | None, outcome: str, predicted: str, margin: float,
                 placebo: Contrast | None) -> bool:  # fmt: skip
    """An effect asserted by the row that its placebo, read by the same rule, asserts too."""
    if claim != EFFECT or placebo is None or placebo.outcome != outcome:
        return False
    return asserts(outcome, predicted, *placebo.ci, margin) == EFFECT
