"""Cao Q4 (the decoder's role) as verdict rows, from a sweep over the decoder's depth.

The runs differ only in the decoder (`model.decoder_depth`, with its width), one per seed; with
`init_seed` the same seed gives the same initial encoder whatever the decoder, so runs pair
seed by seed. Three conditions: a *linear head* (depth 0, an affine map of all tokens), *one
block* (depth 1) and *deep* (the deepest decoder of the sweep). Each row is a `QuestionResult`
over seeds (the encoder's linear-probe top-1, treated - control) decided like the study's rows
(Student t over seeds, Holm, the readout's margin), gated on each condition's trained encoder
beating the same seed's random encoder (`study_rows.gate`, readout "top1").
docs/theory.md ("Q4: the decoder's role") states the rows, predictions and margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maelab import verdicts as vd
from maelab.errors import ConfigError
from maelab.experiments.plan import read_manifest
from maelab.experiments.study_rows import TOP1_MARGIN, StudyRuns, gate
from maelab.probes.questions import QuestionResult, question_row
from maelab.run_folder import BASELINE_DIR, VERDICTS_FILE, RunFolder, read_json

DEPTH_KEY = "model.decoder_depth"
READOUT = "linear_top1"  # the encoder's linear probe, top-1 % (mean-pooled tokens by default)
LINEAR, ONE, DEEP = "linear head", "one block", "deep"
# (treated, control, claim): each predicted to raise the encoder's linear probe
Q4_ROWS = (
    (ONE, LINEAR, "one decoder block gives the encoder a better linear probe than a linear head"),
    (DEEP, ONE, "a deep, wide decoder gives the encoder a better linear probe than one block"),
)


@dataclass
class Q4Table:
    """What `decide_q4` found: the conditions' depths, the runs, gates, rows and skipped rows."""

    depths: dict[str, int]  # condition -> decoder depth
    runs: StudyRuns
    regime: list[vd.RegimeRecord]
    results: list[QuestionResult]
    verdicts: list[vd.VerdictRecord]
    undecided: list[str]


def decoder_conditions(points: list[dict[str, Any]]) -> dict[str, int]:
    """Condition -> decoder depth among the sweep's points: depth 0, 1 and the deepest > 1."""
    depths = sorted({int(p["values"][DEPTH_KEY]) for p in points if DEPTH_KEY in p["values"]})
    if not depths:
        raise ConfigError(f"the sweep has no {DEPTH_KEY} axis: run one with maelab sweep -c cao_q4")
    out = {name: d for name, d in ((LINEAR, 0), (ONE, 1)) if d in depths}
    if depths[-1] > 1:
        out[DEEP] = depths[-1]
    return out


def q4_runs(sweep_dir: str | Path) -> tuple[dict[str, int], StudyRuns]:
    """The per-seed metrics of each condition (`results.json` of finished runs) and the
    pixel baseline's, read from a sweep folder's manifest."""
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    if not manifest:
        raise ConfigError(f"{sweep_dir} is not a sweep folder (no sweep.json)")
    points = manifest["points"]
    depths = decoder_conditions(points)
    by_depth = {d: name for name, d in depths.items()}
    runs: dict[str, dict[int, dict[str, float]]] = {}
    for p in points:
        name = by_depth.get(int(p["values"].get(DEPTH_KEY, -1)))
        metrics = read_json(RunFolder(sweep_dir / p["name"]).results).get("metrics")
        if name is not None and metrics:
            runs.setdefault(name, {})[int(p["seed"])] = metrics
    base = read_json(RunFolder(sweep_dir / BASELINE_DIR).results).get("baselines", {})
    return depths, StudyRuns(runs, dict(base.get("pixels", {})))


def q4_result(runs: StudyRuns, treated: str, control: str, claim: str) -> QuestionResult | None:
    """One row as a QuestionResult over the seeds both conditions have (None: < 2 seeds)."""
    seeds = runs.seeds(treated, control)
    if len(seeds) < 2:
        return None
    t, c = runs.values(treated, READOUT, seeds), runs.values(control, READOUT, seeds)
    if any(math.isnan(x) for x in (*t, *c)):
        return None
    return QuestionResult(
        question="Q4",
        claim=claim,
        manipulation=f"decoder: {treated}",
        control=f"decoder: {control}",
        treated=sum(t) / len(t),
        control_value=sum(c) / len(c),
        paired=[a - b for a, b in zip(t, c, strict=True)],
        predicted="increase",
        margin=TOP1_MARGIN,
        unit="seed",
        details={"seeds": float(len(seeds))},
    )


def q4_table(depths: dict[str, int], runs: StudyRuns) -> Q4Table:
    """Gate every condition, build the rows that have runs and decide them as one family."""
    regime, reached = [], {}
    for name in depths:
        rec = gate(runs, name, "top1")
        if rec is not None:
            regime.append(rec)
            reached[name] = rec.reached
    results, rows, undecided = [], [], []
    for treated, control, claim in Q4_ROWS:
        res = None
        if treated in runs.runs and control in runs.runs:
            res = q4_result(runs, treated, control, claim)
        if res is None:
            undecided.append(f"Q4: {claim}: needs >= 2 seeds of both {treated} and {control}")
            continue
        results.append(res)
        ok = reached.get(treated, False) and reached.get(control, False)
        rows.append(question_row(res, regime_reached=ok))
    return Q4Table(depths, runs, regime, results, vd.decide_table(rows), undecided)


def decide_q4(sweep_dir: str | Path, out: str | Path | None = None) -> tuple[Q4Table, Path]:
    """Decide Q4 from a decoder-depth sweep; writes verdicts.json (default: SWEEP/probes/,
    where the report's Cao section reads the questions' verdicts)."""
    depths, runs = q4_runs(sweep_dir)
    table = q4_table(depths, runs)
    record = vd.Verdicts(
        commit=vd.git_commit(Path(__file__).resolve().parent),
        config_hash=vd.config_hash(read_manifest(sweep_dir)),
        regime=tuple(table.regime),
        verdicts=tuple(table.verdicts),
    )
    path = Path(out) if out else RunFolder(sweep_dir).probes / VERDICTS_FILE
    return table, vd.write_verdicts(path, record)


def format_q4(table: Q4Table) -> str:
    """The rows as text: claim | treated vs control | effect [CI] | n | outcome; then the gates."""
    lines = [
        "conditions: " + ", ".join(f"{n} (depth {d})" for n, d in table.depths.items()),
        "claim | treated vs control (linear top-1 %) | effect [CI] | seeds | outcome",
    ]
    for res, v in zip(table.results, table.verdicts, strict=True):
        lo, hi = v.ci
        lines.append(
            f"{v.claim} | {res.treated:.2f} vs {res.control_value:.2f} | {v.effect:+.2f} "
            f"[{lo:+.2f}, {hi:+.2f}] | {v.n_seeds} | {v.outcome}"
        )
    lines += [f"not decided: {u}" for u in table.undecided]
    for r in table.regime:
        lines.append(
            f"regime {r.condition}: encoder {r.encoder:.2f} vs random {r.random:.2f} (pixels "
            f"{r.pixels:.2f}), CI [{r.ci[0]:+.2f}, {r.ci[1]:+.2f}]: "
            f"{'reached' if r.reached else 'not reached'}"
        )
    return "\n".join(lines)
