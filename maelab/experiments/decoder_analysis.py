"""`maelab analyze decoder`: Cao Q4 decided from a decoder-depth sweep folder.

Reads the sweep's runs (`maelab.experiments.measurements`), decides the declaration
`maelab.experiments.studies.cao_q4` and writes into SWEEP/probes (where the report's Cao section
finds them): `verdicts.json` and the decoder-ablation figure with its probe record.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from maelab import verdicts as vd
from maelab.config import DECODER_DEPTH_KEY, DECODER_WIDTH_KEY
from maelab.errors import ConfigError
from maelab.experiments.decide import Decision, decide
from maelab.experiments.measurements import read_measurements
from maelab.experiments.pilots import pilots_from_sweep
from maelab.experiments.plan import get_dotted, read_manifest
from maelab.experiments.studies.cao_q4 import cao_q4
from maelab.metric_names import EFFECTIVE_RANK, KNN_TOP1, LINEAR_TOP1
from maelab.probes import get_probe, run_theory_probe
from maelab.probes.results import to_jsonable
from maelab.run_folder import VERDICTS_FILE, RunFolder
from maelab.run_records import read_run_results, write_probe_record

ABLATION = "decoder_ablation"  # the registered probe that draws the figure
FIGURE_METRICS = {"linear": LINEAR_TOP1, "knn": KNN_TOP1, EFFECTIVE_RANK: EFFECTIVE_RANK}


def decoder_depths(manifest: dict[str, Any]) -> list[int]:
    """The decoder depths of a sweep's points (ConfigError without a depth axis)."""
    depths = sorted({int(p["values"][DECODER_DEPTH_KEY]) for p in manifest.get("points", [])
                     if DECODER_DEPTH_KEY in p["values"]})  # fmt: skip
    if not depths:
        raise ConfigError(
            f"the sweep has no {DECODER_DEPTH_KEY} axis: run one with maelab sweep -c cao_q4"
        )
    return depths


def ablation_rows(sweep_dir: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per finished run: decoder depth and width, and the figure's metrics."""
    base = manifest.get("base", {})
    rows = []
    for p in manifest["points"]:
        res = read_run_results(sweep_dir / p["name"])
        if not res.finished:
            continue
        values = p["values"]
        width = values.get(DECODER_WIDTH_KEY, get_dotted(base, DECODER_WIDTH_KEY))
        row = {DECODER_DEPTH_KEY: values.get(DECODER_DEPTH_KEY, get_dotted(base, DECODER_DEPTH_KEY)),
               DECODER_WIDTH_KEY: width}  # fmt: skip
        row.update({name: res.metrics.get(key) for name, key in FIGURE_METRICS.items()})
        rows.append(row)
    return rows


def analyze_decoder(
    sweep_dir: str | Path, out: str | Path | None = None, pilot: str | Path | None = None
) -> tuple[dict[str, int], Decision, Path]:
    """Decide Q4 and draw the ablation; returns the conditions' depths, the decision and the
    verdicts file (default SWEEP/probes/verdicts.json; `out` a file or a folder). `pilot`: the
    same sweep trained 3x longer, against which each condition must have converged (without
    one, its rows read "regime not reached (convergence not checked: no pilot)")."""
    t0 = time.time()
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    if not manifest:
        raise ConfigError(f"{sweep_dir} is not a sweep folder (no sweep.json)")
    study = cao_q4(decoder_depths(manifest)[-1])
    pilots = pilots_from_sweep(study, sweep_dir, Path(pilot)) if pilot else None
    decision = decide(study, read_measurements(sweep_dir, study.conditions), pilots)
    record = vd.Verdicts(
        commit=vd.git_commit(Path(__file__).resolve().parent),
        config_hash=vd.config_hash(manifest),
        regime=tuple(decision.regime),
        verdicts=tuple(decision.verdicts),
    )
    probes = RunFolder(sweep_dir).probes
    path = vd.write_verdicts(Path(out) if out else probes / VERDICTS_FILE, record)
    rows = ablation_rows(sweep_dir, manifest)
    if rows:
        figure = probes / f"{ABLATION}.png"
        result = run_theory_probe(ABLATION, rows, figure_path=figure)
        write_probe_record(probes, ABLATION, get_probe(ABLATION).question, sweep_dir,
                           to_jsonable(result), time.time() - t0)  # fmt: skip
    depths = {name: int(values[DECODER_DEPTH_KEY]) for name, values in study.conditions.items()}
    return depths, decision, path


def format_q4(depths: dict[str, int], decision: Decision) -> str:
    """The rows as text: claim | treated vs control | effect [CI] | n | outcome; the gates."""
    lines = [
        "conditions: " + ", ".join(f"{n} (depth {d})" for n, d in depths.items()),
        "claim | treated vs control (linear top-1 %) | effect [CI] | seeds | outcome",
    ]
    for v in decision.verdicts:
        lo, hi = v.ci
        control = v.control if v.control is not None else float("nan")
        lines.append(
            f"{v.claim} | {control + v.effect:.2f} vs {control:.2f} | {v.effect:+.2f} "
            f"[{lo:+.2f}, {hi:+.2f}] | {v.n_seeds} | {v.shown_outcome}"
        )
    lines += [f"not decided: {u.claim}: {u.reason}" for u in decision.undecided]
    for r in decision.regime:
        lines.append(
            f"regime {r.condition}: encoder {r.encoder:.2f} vs random {r.random:.2f} (pixels "
            f"{r.pixels:.2f}), CI [{r.ci[0]:+.2f}, {r.ci[1]:+.2f}]: "
            f"{'reached' if r.reached else 'not reached'}"
        )
    return "\n".join(lines)
