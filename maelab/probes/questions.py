"""Cao et al.'s five questions as experiments: the one result type every question returns.

Each question (Q1..Q5) is a manipulation and a control whose outcome could go either way. Its
experiment function returns a `QuestionResult`: the measure in the treated and the control
condition, and the paired differences (treated - control) over the units the interval is taken
over (images of one checkpoint, or training seeds). `question_row` turns it into a row of the
study's verdict table (`maelab.verdicts`), so a single checkpoint and the demo decide alike.

A contrast that an untrained network shows as well says nothing about training: where the
same contrast is read on the checkpoint's untrained network (the same architecture at its
training seed's initial weights, the same images, masks and perturbations), `placebo` holds it
per unit, and the row is decided on ``paired - placebo`` (the raw and the placebo values are
kept beside it). An experiment with several rows (Q3: one per ablation) returns the first and
lists the others in `more`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from maelab import verdicts as vd

QUESTIONS = ("Q1", "Q2", "Q3", "Q4", "Q5")


@dataclass(frozen=True)
class QuestionResult:
    """One question's measured contrast (plain numbers, ready for JSON via dataclasses.asdict)."""

    question: str  # "Q1".."Q5"
    claim: str  # the paper's claim in one line, as the verdict row names it
    manipulation: str  # what the treated condition changes
    control: str  # the control condition, in words
    treated: float  # the measure in the treated condition (mean over units)
    control_value: float  # the same measure in the control condition
    paired: Sequence[float]  # per-unit treated - control, the interval's sample
    predicted: str  # "increase" | "decrease" | "differs" | "none" (docs/theory.md, Cao)
    margin: float  # the margin fixed in docs/theory.md before the final runs
    unit: str = "image"  # what `paired` ranges over: "image" | "seed" | "position" | ...
    kind: str = vd.PREDICTION  # vd.INSTRUMENT where the outcome holds by construction
    details: dict[str, float] = field(default_factory=dict)  # further numbers for the report
    # per unit, the same contrast read on the untrained network (paired with `paired`); None:
    # the row has no placebo (its contrast is against the untrained network or an optimum)
    placebo: Sequence[float] | None = None
    more: Sequence[QuestionResult] = ()  # further rows of the same question, each decided alike

    def __post_init__(self) -> None:
        if self.question not in QUESTIONS:
            raise ValueError(f"question={self.question!r}: expected one of {', '.join(QUESTIONS)}")
        if len(self.paired) < 2:
            raise ValueError(f"{self.question}: an interval needs >= 2 paired units")
        if self.placebo is not None and len(self.placebo) != len(self.paired):
            raise ValueError(
                f"{self.question}: {len(self.placebo)} placebo values for {len(self.paired)} "
                "paired units"
            )

    @property
    def rows(self) -> list[QuestionResult]:
        """This result and its further rows, in order."""
        return [self, *self.more]

    @property
    def decided(self) -> list[float]:
        """The per-unit values the row is decided on: paired - placebo, or paired alone."""
        if self.placebo is None:
            return [float(x) for x in self.paired]
        return [float(a) - float(b) for a, b in zip(self.paired, self.placebo, strict=True)]


def question_row(result: QuestionResult, regime_reached: bool = True) -> vd.Row:
    """The verdict-table row of one question: paper "Cao", claim "Qn: ...", control value; with
    a placebo, `decide_table` decides on the trained contrast minus the untrained network's and
    keeps both (`raw`, `placebo`)."""
    placebo = None if result.placebo is None else [float(x) for x in result.placebo]
    return vd.Row(
        paper="Cao",
        claim=f"{result.question}: {result.claim}",
        predicted=result.predicted,
        margin=result.margin,
        kind=result.kind,
        regime_reached=regime_reached,
        control=float(result.control_value),
        per_seed=[float(x) for x in result.paired],
        placebo=placebo,
    )
