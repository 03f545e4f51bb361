"""Theory probes: measured tests of what Kong et al. 2023 and Cao et al. 2022 claim about MAE.

Each probe is a function ``(model, images, **options) -> result dataclass`` (numbers only, no
I/O) plus a figure function ``(result, path) -> path`` in :mod:`maelab.probes.figures`.
``images`` is an in-memory :class:`~maelab.data.base.ImageSet` (e.g. ``splits.test``); probes
run the model in eval mode without gradients on the model's device and restore its mode.

Each result is a dataclass of plain floats, ints, lists and dicts (JSON via
``dataclasses.asdict``); its fields are documented where it is defined.

Use the registry to run any probe by name::

    from maelab.probes import PROBES, run_theory_probe
    result = run_theory_probe("stability", model, splits.test, figure_path="figures/q3.png")

``maelab.probes.runner.probe_checkpoint`` runs them on a checkpoint and writes one JSON + PNG
each (``maelab.run_records.write_probe_record``); ``maelab.run_records.read_probe_records``
reads such a folder back.

Cao's five questions as experiments (manipulation vs control, docs/theory.md) are the second
registry, ``QUESTIONS``: question -> :class:`Question` with its experiment function
``(model, images, **options) -> QuestionResult`` (``maelab.probes.questions``) and what it needs
(the decoder, ground-truth latents, or trained runs, as Q4 does). The runner calls every
registered one, skips the others with one line, and decides their rows into ``verdicts.json``. (The frozen-feature
linear probe and k-NN of ``maelab probe`` live in ``maelab.evaluation.frozen``.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from maelab.probes import figures
from maelab.probes.decoder import DecoderAblationResult, decoder_ablation
from maelab.probes.identifiability import (
    IdentifiabilityResult,
    LevelScore,
    identifiability,
    pixel_identifiability,
)
from maelab.probes.information_knockout import q5_experiment
from maelab.probes.interpolation import (
    AttentionLocality,
    InterpolationResult,
    KnockoutResult,
    interpolation_probe,
)
from maelab.probes.low_rank import LowRankResult, low_rank_probe, q2_experiment
from maelab.probes.position import PositionResult, position_probe, q1_experiment
from maelab.probes.questions import QUESTIONS as QUESTION_IDS
from maelab.probes.questions import QuestionResult
from maelab.probes.stability import StabilityResult, q3_experiment, stability_probe


@dataclass(frozen=True)
class Probe:
    """A registered probe: how to run it and how to draw its result."""

    name: str
    question: str  # the claim it measures, one line
    run: Callable[..., Any]  # kind "model": (model, images, **options); kind "runs": (rows, ...)
    figure: Callable[[Any, str | Path], Path]
    kind: Literal["model", "runs"] = "model"
    needs_latents: bool = False  # only on data with ground-truth latents (the synthetic set)
    needs_decoder: bool = False  # reads the decoder (an encoder-only checkpoint has none)


PROBES: dict[str, Probe] = {}


def register_probe(probe: Probe) -> Probe:
    PROBES[probe.name] = probe
    return probe


def get_probe(name: str) -> Probe:
    if name not in PROBES:
        raise ValueError(f"unknown probe '{name}' (valid: {', '.join(PROBES)})")
    return PROBES[name]


def run_theory_probe(
    name: str, *args: Any, figure_path: str | Path | None = None, **options: Any
) -> Any:
    """Run a registered theory probe (``args``: ``model, images`` or ``rows``) and, with
    ``figure_path``, write its figure there. Returns the result dataclass."""
    probe = get_probe(name)
    result = probe.run(*args, **options)
    if figure_path is not None:
        probe.figure(result, figure_path)
    return result


register_probe(
    Probe(
        "identifiability",
        "Kong et al.: which latent level (global / region / cell) the features identify",
        identifiability,
        figures.identifiability_figure,
        needs_latents=True,
    )
)
register_probe(
    Probe(
        "position",
        "Cao Q1: positional embeddings act as coordinates of the representation",
        position_probe,
        figures.position_figure,
    )
)
register_probe(
    Probe(
        "low_rank",
        "Cao Q2: patchified images are low-rank; lower rank, easier reconstruction",
        low_rank_probe,
        figures.low_rank_figure,
        needs_decoder=True,
    )
)
register_probe(
    Probe(
        "stability",
        "Cao Q3: attention + skip connections keep layer-to-layer updates small",
        stability_probe,
        figures.stability_figure,
    )
)
register_probe(
    Probe(
        "interpolation",
        "Cao Q5: masked patches are filled by global interpolation, not neighbours only",
        interpolation_probe,
        figures.interpolation_figure,
        needs_decoder=True,
    )
)
register_probe(
    Probe(
        "decoder_ablation",
        "Cao Q4: decoder depth and width shape the encoder's representation",
        decoder_ablation,
        figures.decoder_ablation_figure,
        kind="runs",
    )
)


@dataclass(frozen=True)
class Question:
    """One of Cao's questions as an experiment: ``run(model, images, **options)`` returns a
    :class:`~maelab.probes.questions.QuestionResult`; the runner passes only the options the
    function names (``max_images``, ``fit_images``, ``seed``)."""

    question: str  # "Q1".."Q5"
    title: str  # a few words for progress lines and the report
    run: Callable[..., QuestionResult] | None  # None: no experiment function registered yet
    needs_decoder: bool = False
    needs_latents: bool = False
    needs_data: str = ""  # non-empty: only on this data set (its known answer lives there)
    needs_data_why: str = ""  # what that data set gives the experiment, a few words
    from_runs: str = ""  # non-empty: measured over trained runs, not on one checkpoint (how)

    @property
    def how(self) -> str:
        """The command that measures the question."""
        if self.from_runs:
            return self.from_runs
        probes = "maelab analyze probes --ckpt RUN/checkpoints/last.pt"
        return f"maelab pretrain -c {self.needs_data}, then {probes}" if self.needs_data else probes


# question -> its experiment function: the one table to edit when an experiment is added
# (e.g. ``run=position.q1_experiment``); None is reported and skipped by the runner.
QUESTIONS: dict[str, Question] = {
    "Q1": Question("Q1", "positional embeddings as coordinates", q1_experiment),
    "Q2": Question(
        "Q2",
        "low rank and reconstruction",
        q2_experiment,
        needs_decoder=True,
        needs_data="lowrank",
        needs_data_why="its known rank, read at a ladder of ranks",
    ),
    "Q3": Question("Q3", "layer-to-layer stability", q3_experiment),
    "Q4": Question(
        "Q4",
        "the decoder's role",
        None,
        from_runs="decoder-depth runs: maelab sweep -c cao_q4, then maelab analyze decoder "
        "--sweep runs/cao_q4",
    ),
    "Q5": Question(
        "Q5",
        "global interpolation",
        q5_experiment,
        needs_decoder=True,
        needs_data="synthetic",
        needs_data_why="its control world without regions",
    ),
}


def register_question(question: Question) -> Question:
    """Add or replace a question's experiment (tests register fakes through this)."""
    if question.question not in QUESTION_IDS:
        raise ValueError(f"question {question.question!r}: expected one of {QUESTION_IDS}")
    QUESTIONS[question.question] = question
    return question


__all__ = [
    "PROBES",
    "QUESTIONS",
    "Question",
    "QuestionResult",
    "register_question",
    "AttentionLocality",
    "DecoderAblationResult",
    "IdentifiabilityResult",
    "InterpolationResult",
    "KnockoutResult",
    "LevelScore",
    "LowRankResult",
    "PositionResult",
    "Probe",
    "StabilityResult",
    "decoder_ablation",
    "figures",
    "get_probe",
    "identifiability",
    "interpolation_probe",
    "low_rank_probe",
    "pixel_identifiability",
    "position_probe",
    "register_probe",
    "run_theory_probe",
    "stability_probe",
]
