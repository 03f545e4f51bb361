"""The calibration's rows as `verdicts.json` rows (schema 2, kind "calibration").

One verdict row per check: effect = measured - exact, margin = the check's tolerance (fixed
before the run, docs/theory.md), predicted "none", decided by `verdicts.decide_table` like every
row; `expected` is the outcome the exact optimum says the row must have ("agrees": the pipeline
reproduces the known answer). A row misses when its outcome differs from `expected`.
"""

from __future__ import annotations

from pathlib import Path

from maelab import verdicts as vd
from maelab.experiments.calibration import CalibrationResult
from maelab.stats import AGREES

PAPER = "calibration"


def calibration_rows(result: CalibrationResult) -> list[vd.Row]:
    """The undecided rows: one per check of every calibration row, in order."""
    return [
        vd.Row(
            paper=PAPER,
            claim=f"{row.claim}: {check.condition}, {check.quantity}",
            predicted="none",
            margin=check.tolerance,
            per_seed=(check.treated - check.expected,),
            kind=vd.CALIBRATION,
            expected=AGREES,
            exact=check.expected,
        )
        for row in result.rows
        for check in row.checks
    ]


def calibration_verdicts(result: CalibrationResult) -> vd.Verdicts:
    """The decided rows with their provenance (the calibration's declaration is in code: the
    commit identifies it; the hash is over the rows' conditions and tolerances)."""
    rows = calibration_rows(result)
    decided = vd.decide_table(rows, sampling=vd.EXACT)
    declared = [(r.claim, r.margin, r.exact) for r in rows]
    return vd.Verdicts(
        commit=vd.git_commit(Path(__file__).resolve().parent),
        config_hash=vd.config_hash({"rows": declared}),
        ci_method=vd.EXACT.ci_method,
        verdicts=tuple(decided),
    )


def misses(verdicts: vd.Verdicts) -> list[vd.VerdictRecord]:
    """The calibration rows whose outcome is not the expected one."""
    return [v for v in verdicts.verdicts if v.kind == vd.CALIBRATION and v.outcome != v.expected]


def write_calibration_verdicts(result: CalibrationResult) -> tuple[Path, vd.Verdicts]:
    """Decide the rows and write DIR/verdicts.json beside DIR/calibration.json."""
    record = calibration_verdicts(result)
    return vd.write_verdicts(result.out_dir / vd.VERDICTS_FILE, record), record
