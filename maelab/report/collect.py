"""Read a run or a sweep folder into plain records, and aggregate runs over seeds.

A sweep folder has `sweep.json` (points and their field values); a folder of run folders without
one is read too (the fields that differ between their configs become the axes); a single run
folder has `config.yaml` itself.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maelab.engine.logging import read_metrics
from maelab.experiments.plan import get_dotted
from maelab.run_folder import BASELINE_DIR, MANIFEST_FILE, RESULTS_FILE


@dataclass
class RunRecord:
    """One run folder: its axis values, seed, evaluation numbers and config."""

    name: str
    path: Path
    values: dict[str, Any]  # sweep axis -> value
    seed: int
    metrics: dict[str, float] = field(default_factory=dict)
    spectrum: list[float] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return bool(self.metrics)


@dataclass
class Collected:
    """Everything the report needs from a folder."""

    root: Path
    kind: str  # "run" or "sweep"
    keys: list[str]  # the sweep axes (empty for one run)
    runs: list[RunRecord]
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    baseline_spectra: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Group:
    """Runs that share every axis value except the seed: mean, sample std and count per metric."""

    values: dict[str, Any]
    runs: list[RunRecord]
    mean: dict[str, float]
    std: dict[str, float]

    @property
    def n(self) -> int:
        return len(self.runs)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _read_config(run_dir: Path) -> dict[str, Any]:
    try:
        return yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def read_run(
    run_dir: Path, values: dict[str, Any] | None = None, seed: int | None = None
) -> RunRecord:
    cfg = _read_config(run_dir)
    res = _read_json(run_dir / RESULTS_FILE)
    return RunRecord(
        name=run_dir.name,
        path=run_dir,
        values=dict(values or {}),
        seed=int(seed if seed is not None else get_dotted(cfg, "train.seed") or 0),
        metrics={
            k: float(v) for k, v in res.get("metrics", {}).items() if isinstance(v, (int, float))
        },
        spectrum=[float(v) for v in res.get("spectrum", [])],
        config=cfg,
    )


def collect(folder: str | Path) -> Collected:
    """Read a run folder or a sweep folder (see the module docstring)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"'{root}' is not a folder")
    if (root / "config.yaml").is_file() and not (root / MANIFEST_FILE).is_file():
        return Collected(root, "run", [], [read_run(root)])
    manifest = _read_json(root / MANIFEST_FILE)
    if manifest:
        keys = list(manifest.get("keys", []))
        runs = [
            read_run(root / p["name"], p["values"], p["seed"]) for p in manifest.get("points", [])
        ]
    else:
        dirs = sorted(d for d in root.iterdir() if d.is_dir() and (d / "config.yaml").is_file())
        dirs = [d for d in dirs if d.name != BASELINE_DIR]
        if not dirs:
            raise FileNotFoundError(f"'{root}' holds no run (no config.yaml) and no sweep.json")
        runs = [read_run(d) for d in dirs]
        keys = differing_keys([r.config for r in runs])
        for r in runs:
            r.values = {k: get_dotted(r.config, k) for k in keys}
    base = _read_json(root / BASELINE_DIR / RESULTS_FILE)
    return Collected(
        root,
        "sweep",
        keys,
        runs,
        baselines=base.get("baselines", {}),
        baseline_spectra=base.get("spectra", {}),
    )


def differing_keys(configs: Iterable[dict[str, Any]]) -> list[str]:
    """Dotted config fields whose values differ between configs (run_dir and the seed excluded)."""
    flats = [_flatten(c) for c in configs]
    keys = sorted({k for f in flats for k in f})
    skip = {"run_dir", "train.seed"}
    return [k for k in keys if k not in skip and len({json.dumps(f.get(k)) for f in flats}) > 1]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std of the finite values (std 0 for one value; nan for none)."""
    xs = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def group_runs(runs: list[RunRecord], keys: list[str] | None = None) -> list[Group]:
    """Finished runs grouped by their values on `keys` (default: all their axes), seeds pooled."""
    groups: dict[str, list[RunRecord]] = {}
    order: list[str] = []
    ordered: dict[str, dict[str, Any]] = {}  # the values in axis order, for labels
    for r in runs:
        if not r.finished:
            continue
        ks = keys if keys is not None else list(r.values)
        vals = {k: r.values.get(k) for k in ks}
        key = json.dumps(vals, sort_keys=True, default=str)
        if key not in groups:
            groups[key] = []
            order.append(key)
            ordered[key] = vals
        groups[key].append(r)
    out = []
    for key in order:
        members = groups[key]
        names = sorted({m for r in members for m in r.metrics})
        stats = {m: mean_std([r.metrics.get(m, math.nan) for r in members]) for m in names}
        out.append(
            Group(
                values=ordered[key],
                runs=members,
                mean={m: s[0] for m, s in stats.items()},
                std={m: s[1] for m, s in stats.items()},
            )
        )
    return out


def select(groups: list[Group], **fixed: Any) -> list[Group]:
    """Groups whose values match every `fixed` item (keys with dots passed via a dict)."""
    return [g for g in groups if all(_same(g.values.get(k), v) for k, v in fixed.items())]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def training_curve(run: RunRecord) -> list[tuple[int, float]]:
    """(step, loss) of the run's logged training steps."""
    recs = read_metrics(run.path / "metrics.jsonl")
    return [
        (int(r["step"]), float(r["loss"])) for r in recs if r.get("kind") == "train" and "loss" in r
    ]
