"""A study as a declaration: its conditions, its rows, its gates and its margins.

A *condition* is a name for a set of sweep axis values (``region: {mask.unit: 16, ...}``); its
runs are the sweep's points with those values, one per seed. A *row* compares two conditions
seed by seed (or reads one condition) through a per-seed value, predicts a direction (given, or
derived from the latents the two conditions' masks share) and names the *gates* both conditions
must pass. A *margin* belongs to a readout (docs/theory.md, "Margins"): a row inherits it.
`maelab.experiments.decide.decide(study, measurements)` turns a study and its measurements into
verdicts; each study lives in its own module of `maelab.experiments.studies`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from maelab import stats
from maelab.experiments.measurements import AT_BASE, Measurements
from maelab.metric_names import LINEAR_TOP1, of_pixels, of_random, untrained
from maelab.verdicts import PREDICTION

INCREASE, DECREASE, DIFFERS, NONE = stats.PREDICTIONS  # the directions a row may predict


@dataclass(frozen=True)
class Margin:
    """The smallest effect a readout's claims are about, fixed before the final runs; `readout`
    is the first column of docs/theory.md's margin table, word for word."""

    readout: str
    value: float


R2 = Margin("R^2 of a latent (linear or Nystrom-RBF probe), difference of two conditions", 0.02)
TOP1 = Margin("probe top-1 (linear or k-NN), difference in points", 1.0)
LOG_RANK = Margin("effective rank, RankMe: log of the ratio of two conditions", 0.05)
ALIGNMENT = Margin("alignment of two masked views, normalised by the spread between images", 0.05)
CORRELATION = Margin("a correlation coefficient (Spearman rho)", 0.1)
RELATIVE_ERROR = Margin("a relative change of a reconstruction error", 0.05)
CONTROL_R2 = Margin("the control latent's R^2 (instrument, predicted 0)", 0.05)
MARGINS = (R2, TOP1, LOG_RANK, ALIGNMENT, CORRELATION, RELATIVE_ERROR, CONTROL_R2)


@dataclass(frozen=True)
class Gate:
    """A regime readout: the trained encoder (`encoder`) must beat the same seed's untrained
    network (`random`) on it, and the pixels' whole-image PCA-k (`pca`) where one is named; raw
    pixels (`pixels`) are read beside."""

    label: str  # as the regime record names it: "<condition> · <label>"
    encoder: str
    random: str
    pixels: str
    pca: str | None = None


def gate_on(label: str, metric: str) -> Gate:
    """A gate on a metric of `evaluate_model`: itself, its `random.` and `pixels.` twins."""
    return Gate(label, metric, of_random(metric), of_pixels(metric))


ON_TOP1 = "top1"  # the gate on the linear probe, as rows name it
TOP1_GATE = gate_on("linear top-1", LINEAR_TOP1)

# (measurements, treated, control or None, seeds) -> one value per seed
PerSeed = Callable[[Measurements, str, "str | None", list[int]], list[float]]


@dataclass(frozen=True)
class RowSpec:
    """One comparison: treated - control of a per-seed value, its prediction and its gates."""

    paper: str
    claim: str
    treated: str
    control: str | None  # None: a one-condition row (the treated value itself)
    value: PerSeed
    margin: Margin
    predicted: str | None = None  # None: derived from `shared` below
    shared: str | None = None  # the level whose shared share decides the direction
    gates: tuple[str, ...] = ()  # names of the study's gates both conditions must pass
    kind: str = PREDICTION
    show_control: str | None = None  # a metric whose control-condition mean the row stores
    # the positive control: a metric holding, per seed, the effect of a constructed model read
    # the same way (`maelab.metric_names.positive_control`), taken from the control condition
    # (the treated one for one-condition rows); None: this readout has none
    positive: str | None = None
    positive_what: str = ""  # what the constructed model is, in words

    @property
    def conditions(self) -> list[str]:
        """Every condition the row reads (a peak row: its interior and end conditions)."""
        if isinstance(self.value, Peak):
            return [*self.value.interior, *self.value.ends]
        return [self.treated] + ([self.control] if self.control else [])

    @property
    def positive_condition(self) -> str:
        return self.control or self.treated


@dataclass(frozen=True)
class Undecided:
    """A claim the study names but does not decide, and why (the command that decides it)."""

    paper: str
    claim: str
    reason: str


@dataclass(frozen=True)
class Study:
    """Conditions (name -> sweep axis values), rows, gates (name -> Gate) and the claims it
    leaves to other commands. Its prediction rows form one Holm family."""

    name: str
    conditions: Mapping[str, Mapping[str, Any]]
    rows: tuple[RowSpec, ...]
    gates: Mapping[str, Gate]
    undecided: tuple[Undecided, ...] = field(default=())
    pilot_gate: str | None = None  # the gate a condition's pilot is compared on (convergence)

    def plus(self, other: Study) -> Study:
        """This study with another's conditions and rows added (one Holm family). Every
        condition is pinned to the sweep's base value (`AT_BASE`) on the fields only the other
        study's conditions name: a world condition that does not name `model.code_dim` must not
        take the code runs as its own."""
        conditions = {**self.conditions, **other.conditions}
        keys = {k for values in conditions.values() for k in values}
        return replace(
            self,
            conditions={
                n: {**{k: AT_BASE for k in keys if k not in v}, **v} for n, v in conditions.items()
            },  # fmt: skip
            rows=(*self.rows, *other.rows),
            gates={**self.gates, **other.gates},
            undecided=(*self.undecided, *other.undecided),
        )

    def labelled(self, label: str) -> Study:
        """The same study on other data: conditions `<label> <name>`, claims `<label>: <claim>`."""

        def named(c: str | None) -> str | None:
            return None if c is None else f"{label} {c}"

        rows = tuple(
            replace(r, claim=f"{label}: {r.claim}", treated=f"{label} {r.treated}",
                    control=named(r.control), value=_renamed(r.value, named))
            for r in self.rows
        )  # fmt: skip
        conditions = {f"{label} {n}": v for n, v in self.conditions.items()}
        return replace(self, name=f"{self.name} ({label})", conditions=conditions, rows=rows)


# ---------------------------------------------------------------- per-seed values
@dataclass(frozen=True)
class Diff:
    """treated - control of a metric (one-condition rows: the treated value itself)."""

    key: str

    def untrained(self) -> Diff:
        """The same value read from the untrained networks (the row's placebo)."""
        return Diff(untrained(self.key))

    def __call__(self, m: Measurements, t: str, c: str | None, seeds: list[int]) -> list[float]:
        a = m.values(t, self.key, seeds)
        if c is None:
            return a
        return [x - y for x, y in zip(a, m.values(c, self.key, seeds), strict=True)]


@dataclass(frozen=True)
class LogRatio:
    """log(treated / control) of `key`, or log(key / base) within the treated runs."""

    key: str
    base: str | None = None

    def untrained(self) -> LogRatio:
        return LogRatio(untrained(self.key), None if self.base is None else untrained(self.base))

    def __call__(self, m: Measurements, t: str, c: str | None, seeds: list[int]) -> list[float]:
        a = m.values(t, self.key, seeds)
        b = m.values(t, self.base, seeds) if self.base else m.values(c or t, self.key, seeds)
        return [math.log(x / y) if x > 0 and y > 0 else math.nan for x, y in zip(a, b, strict=True)]


@dataclass(frozen=True)
class OwnMinus:
    """`key - base` within the treated runs (trained minus the same seed's random encoder)."""

    key: str
    base: str

    def untrained(self) -> OwnMinus:
        return OwnMinus(untrained(self.key), untrained(self.base))

    def __call__(self, m: Measurements, t: str, c: str | None, seeds: list[int]) -> list[float]:
        pairs = zip(m.values(t, self.key, seeds), m.values(t, self.base, seeds), strict=True)
        return [x - y for x, y in pairs]


@dataclass(frozen=True)
class Peak:
    """Per seed: the best interior condition minus the best endpoint condition."""

    key: str
    interior: tuple[str, ...]
    ends: tuple[str, ...]

    def untrained(self) -> Peak:
        return replace(self, key=untrained(self.key))

    def __call__(self, m: Measurements, t: str, c: str | None, seeds: list[int]) -> list[float]:
        inner = [m.values(n, self.key, seeds) for n in self.interior]
        outer = [m.values(n, self.key, seeds) for n in self.ends]
        return [
            max(v) - max(w)
            for v, w in zip(zip(*inner, strict=True), zip(*outer, strict=True), strict=True)
        ]


def peak_row(paper: str, claim: str, key: str, margin: Margin, ratios: list[str],
             gates: tuple[str, ...] = ()) -> RowSpec:  # fmt: skip
    """'`key` peaks at an intermediate condition' over conditions in ascending order (>= 3)."""
    ends, inner = (ratios[0], ratios[-1]), tuple(ratios[1:-1])
    return RowSpec(paper, claim, inner[0], None, Peak(key, inner, ends), margin,
                   predicted=INCREASE, gates=gates)  # fmt: skip


def _renamed(value: PerSeed, named: Callable[[str | None], str | None]) -> PerSeed:
    """A per-seed value whose own condition names (a peak's) follow a relabelled study."""
    if isinstance(value, Peak):
        return replace(value, interior=tuple(map(named, value.interior)),  # type: ignore[arg-type]
                       ends=tuple(map(named, value.ends)))  # type: ignore[arg-type]  # fmt: skip
    return value
