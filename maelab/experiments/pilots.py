"""Pilots: trained means converged. A pilot is each condition of a study trained 3x longer
(`PILOT_FACTOR`), once, on the tuning seed (`PILOT_SEED`); a condition of the study counts only
when its mean final loss sits within 5% of its pilot's and its gate readout within the margin
(`maelab.experiments.decide`).

Pilots are keyed by the budget they judge: a hash of the runs' resolved config without what
does not change the training (seed, folders, logging and checkpoint cadence). The shipped
pilots (`maelab/configs/pilots.json`, with the commit that ran them) serve the shipped demo;
`maelab demo --pilot` runs the pilots of any budget into OUT/pilot/pilots.json, which the demo
in the same folder reads first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maelab.config import build_config
from maelab.errors import ConfigError
from maelab.experiments.declaration import Study
from maelab.experiments.measurements import Measurements, read_measurements
from maelab.experiments.plan import read_manifest
from maelab.metric_names import FINAL_LOSS
from maelab.run_folder import write_json_atomic
from maelab.verdict_records import config_hash, git_commit

PILOT_FACTOR = 3  # a pilot trains this many times longer than the runs it judges
PILOT_SEED = 0  # the tuning seed (docs/theory.md): never one the study reports on
PILOT_DIR = "pilot"  # inside the study folder
PILOTS_NAME = "pilots.json"
SHIPPED = Path(__file__).resolve().parent.parent / "configs" / PILOTS_NAME
TRAIN_IGNORED = ("seed", "save_every", "log_every", "keep_last", "resume")  # change no learning


def budget_key(base: Mapping[str, Any], epochs: int | None = None) -> str:
    """The hash of a budget: the resolved config without `run_dir` and `TRAIN_IGNORED`, with
    `train.epochs` replaced by `epochs` when given (a pilot's key is that of the runs it
    judges: its own epochs / PILOT_FACTOR)."""
    cfg = build_config(dict(base)).model_dump(mode="json")
    cfg.pop("run_dir", None)
    for key in TRAIN_IGNORED:
        cfg["train"].pop(key, None)
    if epochs is not None:
        cfg["train"]["epochs"] = epochs
    return config_hash(cfg)


def pilot_entry(study: Study, m: Measurements) -> dict[str, Any]:
    """The pilot of every condition with a run: its final loss and its gate readout."""
    gate = study.gates[study.pilot_gate] if study.pilot_gate else None
    conditions = {}
    for cond in study.conditions:
        seeds = m.seeds(cond)
        if not seeds or gate is None:
            continue
        run = m.runs[cond][seeds[0]]
        conditions[cond] = {"loss": float(run.get(FINAL_LOSS, math.nan)),
                            "readout": float(run.get(gate.encoder, math.nan))}  # fmt: skip
    steps = max((int(m.runs[c][m.seeds(c)[0]].get("steps", 0)) for c in conditions), default=0)
    return {"study": study.name, "steps": steps, "judges_steps": steps // PILOT_FACTOR,
            "seed": PILOT_SEED, "commit": git_commit(), "conditions": conditions}  # fmt: skip


def write_pilot(study_dir: Path, key: str, entry: Mapping[str, Any]) -> Path:
    """Add (or replace) a budget's pilot in STUDY/pilot/pilots.json."""
    path = study_dir / PILOT_DIR / PILOTS_NAME
    known = _read(path)
    known[key] = dict(entry)
    return write_json_atomic(path, known)


def read_pilots(key: str, study_dir: Path | None = None) -> dict[str, dict[str, float]] | None:
    """condition -> {"loss", "readout"} of the pilot of this budget: the study folder's own
    pilots first, then the shipped ones; None when neither has this budget."""
    for path in ([study_dir / PILOT_DIR / PILOTS_NAME] if study_dir else []) + [SHIPPED]:
        entry = _read(path).get(key)
        if entry:
            return {c: dict(v) for c, v in entry["conditions"].items()}
    return None


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON ({exc}); delete it and run `maelab demo --pilot` "
                          "again") from None  # fmt: skip


def pilots_from_sweep(
    study: Study, sweep_dir: Path, pilot_dir: Path
) -> dict[str, dict[str, float]]:
    """The pilots of a study's sweep read from a second sweep of the same conditions trained
    `PILOT_FACTOR` times longer (any seed): ConfigError unless its budget, its epochs divided by
    the factor, is the sweep's own."""
    base, pilot = read_manifest(sweep_dir), read_manifest(pilot_dir)
    if not pilot:
        raise ConfigError(f"{pilot_dir} is not a sweep folder (no sweep.json)")
    epochs = build_config(dict(pilot.get("base", {}))).train.epochs
    if epochs % PILOT_FACTOR or budget_key(pilot["base"], epochs // PILOT_FACTOR) != budget_key(
        base["base"]
    ):
        raise ConfigError(
            f"{pilot_dir} is no pilot of {sweep_dir}: run the same sweep with train.epochs = "
            f"{PILOT_FACTOR} x the sweep's and the rest unchanged"
        )
    m = read_measurements(pilot_dir, study.conditions)
    return {c: dict(v) for c, v in pilot_entry(study, m)["conditions"].items()}
