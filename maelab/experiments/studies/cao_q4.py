"""Cao Q4, the decoder's role (`maelab sweep -c cao_q4`, then `maelab analyze decoder`).

The runs differ only in the decoder (`model.decoder_depth`, with its width); with `init_seed`
the same seed gives the same initial encoder whatever the decoder, so runs pair seed by seed.
Three conditions: a *linear head* (depth 0, an affine map of all tokens), *one block* (depth 1)
and *deep* (the deepest decoder of the sweep). Each row: the encoder's linear-probe top-1,
treated - control, predicted to rise; docs/theory.md ("Q4: the decoder's role")."""

from __future__ import annotations

from maelab.config import DECODER_DEPTH_KEY
from maelab.experiments.declaration import (
    INCREASE,
    ON_TOP1,
    TOP1,
    TOP1_GATE,
    Diff,
    RowSpec,
    Study,
)  # fmt: skip
from maelab.metric_names import LINEAR_TOP1

LINEAR, ONE, DEEP = "linear head", "one block", "deep"


def _row(treated: str, control: str, claim: str) -> RowSpec:
    return RowSpec("Cao", f"Q4: {claim}", treated, control, Diff(LINEAR_TOP1), TOP1,
                   predicted=INCREASE, gates=(ON_TOP1,), show_control=LINEAR_TOP1)  # fmt: skip


def cao_q4(deepest: int) -> Study:
    """Q4 over a sweep whose deepest decoder has `deepest` blocks (no *deep* condition unless
    it is more than one)."""
    deep = {DEEP: {DECODER_DEPTH_KEY: deepest}} if deepest > 1 else {}
    return Study(
        "Cao Q4",
        conditions={LINEAR: {DECODER_DEPTH_KEY: 0}, ONE: {DECODER_DEPTH_KEY: 1}, **deep},
        rows=(
            _row(ONE, LINEAR, "one decoder block gives the encoder a better linear probe than "
                 "a linear head"),
            _row(DEEP, ONE, "a deep, wide decoder gives the encoder a better linear probe than "
                 "one block"),
        ),
        gates={ON_TOP1: TOP1_GATE},
        pilot_gate=ON_TOP1,
    )  # fmt: skip
