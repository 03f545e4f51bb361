"""Read a run or a sweep folder into plain records, and aggregate runs over seeds.

A sweep folder has `sweep.json` (points and their field values); a folder of run folders without
one is read too (the fields that differ between their configs become the axes); a single run
folder has `config.yaml` itself; a calibration folder (`calibration.json`) may hold no run. Each
run's config is validated (a folder whose config does not validate is skipped with a warning)
and its model architecture resolved.
"""

from __future__ import annotations

import json
import math
import statistics
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maelab.config import Config, build_config, flatten
from maelab.engine.metrics_log import read_metrics
from maelab.errors import ConfigError
from maelab.models.mae import MAEArch
from maelab.models.presets import arch_from_config
from maelab.run_folder import (
    BASELINE_DIR,
    CONFIG_FILE,
    MANIFEST_FILE,
    RunFolder,
    read_json,
)
from maelab.run_records import read_baselines, read_run_results


@dataclass
class RunRecord:
    """One run folder: its axis values, seed, evaluation numbers, config and architecture.

    `arch` and `flat` follow from `config`, which is None for a sweep point that has not written
    its config yet."""

    name: str
    path: Path
    values: dict[str, Any]  # sweep axis -> value
    seed: int
    metrics: dict[str, float] = field(default_factory=dict)
    spectrum: list[float] = field(default_factory=list)
    config: Config | None = None
    arch: MAEArch | None = None
    flat: dict[str, Any] = field(default_factory=dict)  # the config by dotted key

    def __post_init__(self) -> None:
        if self.config is not None:
            self.arch = self.arch or resolve_arch(self.config)
            self.flat = self.flat or flatten(self.config.model_dump(mode="json"))

    def setting(self, key: str) -> Any:
        """A config field by dotted key (`mask.ratio`); None when unknown."""
        return self.flat.get(key)

    @property
    def finished(self) -> bool:
        return bool(self.metrics)


@dataclass
class Collected:
    """Everything the report needs from a folder."""

    root: Path
    kind: str  # "run", "sweep" or "calibration" (a `maelab calibrate` folder: no runs)
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


class InvalidRunConfig(ValueError):
    """A run folder's config.yaml exists but is not a valid maelab config."""


def read_config(run_dir: Path) -> Config | None:
    """The validated config of a run folder; None when it has no config.yaml (not started)."""
    path = RunFolder(run_dir).config
    if not path.is_file():
        return None
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRunConfig(f"unreadable {CONFIG_FILE}: {str(exc).splitlines()[0]}") from None
    if not isinstance(tree, dict):
        raise InvalidRunConfig(f"{CONFIG_FILE} holds a {type(tree).__name__}, not a mapping")
    try:
        return build_config(tree)
    except ConfigError as exc:
        raise InvalidRunConfig(str(exc)) from None


def resolve_arch(cfg: Config) -> MAEArch:
    """The run's model architecture: its preset filled in with the fields it sets.

    Image size and channels come from the config where set, else from the preset (the data
    decides them at training time; the report reads neither)."""
    try:
        # None for the data's size keeps the preset's value (make_arch drops None overrides)
        return arch_from_config(cfg.model, cfg.data.image_size, None)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise InvalidRunConfig(f"bad model config: {exc}") from None


def read_run(
    run_dir: Path, values: dict[str, Any] | None = None, seed: int | None = None
) -> RunRecord:
    """One run folder (raises InvalidRunConfig when its config does not validate)."""
    cfg = read_config(run_dir)
    res = read_run_results(run_dir)
    return RunRecord(
        name=run_dir.name,
        path=run_dir,
        values=dict(values or {}),
        seed=int(seed if seed is not None else (cfg.train.seed if cfg else 0)),
        metrics=res.metrics,
        spectrum=res.spectrum,
        config=cfg,
    )


def _read_runs(points: Iterable[tuple[Path, dict[str, Any] | None, int | None]]) -> list[RunRecord]:
    """The runs of (folder, axis values, seed) points; invalid configs skipped with a warning."""
    runs = []
    for run_dir, values, seed in points:
        try:
            runs.append(read_run(run_dir, values, seed))
        except InvalidRunConfig as exc:
            warnings.warn(f"report: skipping run folder '{run_dir}': {exc}", stacklevel=3)
    return runs


def collect(folder: str | Path) -> Collected:
    """Read a run folder or a sweep folder (see the module docstring)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"'{root}' is not a folder")
    layout = RunFolder(root)
    if layout.config.is_file() and not layout.manifest.is_file():
        return Collected(root, "run", [], _read_runs([(root, None, None)]))
    manifest = read_json(layout.manifest)
    if manifest:
        keys = list(manifest.get("keys", []))
        runs = _read_runs(
            (root / p["name"], p["values"], p["seed"]) for p in manifest.get("points", [])
        )
    else:
        dirs = sorted(d for d in root.iterdir() if d.is_dir() and RunFolder(d).config.is_file())
        dirs = [d for d in dirs if d.name != BASELINE_DIR]
        if not dirs and layout.calibration_result.is_file():  # `maelab calibrate`: no runs
            return Collected(root, "calibration", [], [])
        if not dirs:
            raise FileNotFoundError(
                f"'{root}' holds no run (no {CONFIG_FILE}) and no {MANIFEST_FILE}"
            )
        runs = _read_runs((d, None, None) for d in dirs)
        keys = differing_keys([r.config.model_dump(mode="json") for r in runs if r.config])
        for r in runs:
            r.values = {k: r.setting(k) for k in keys}
    base = read_baselines(root)
    return Collected(root, "sweep", keys, runs, base.metrics, base.spectra)


def differing_keys(configs: Iterable[dict[str, Any]]) -> list[str]:
    """Dotted config fields whose values differ between configs (run_dir and the seed excluded)."""
    flats = [flatten(c) for c in configs]
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


def training_curve(run: RunRecord) -> list[tuple[int, float]]:
    """(step, loss) of the run's logged training steps."""
    recs = read_metrics(RunFolder(run.path).metrics)
    return [
        (int(r["step"]), float(r["loss"])) for r in recs if r.get("kind") == "train" and "loss" in r
    ]
