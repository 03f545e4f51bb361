"""Sweep plans: a grid over any config fields expanded into named, validated points.

A sweep folder holds `sweep.json` (the points and their field values), `baselines/` (random-init
encoder and raw pixels) and one run folder per point, named from its field values, e.g.
`mask.ratio=0.75__mask.unit=8__seed=0`. This module is pure planning (YAML + overrides + --grid
-> SweepPlan) plus the checks and the manifest; maelab.experiments.sweep runs a plan.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, field_validator

from maelab.config import (
    Config,
    Strict,
    build_config,
    deep_merge,
    dump_config,
    load_config,
    parse_value,
    set_dotted,
)
from maelab.data import get_dataset
from maelab.errors import ConfigError
from maelab.evaluation.results import EvalConfig
from maelab.run_folder import RunFolder, read_json, write_json_atomic


class SweepFile(Strict):
    """A sweep YAML as merged from files and overrides: the base config (every other key,
    validated per point), the `sweep:` section and sections of other commands (`demo:`)."""

    model_config = ConfigDict(extra="allow")

    sweep: dict[str, Any] = {}
    demo: dict[str, Any] = {}

    @field_validator("sweep", "demo", mode="before")
    @classmethod
    def _empty_section(cls, v: Any) -> Any:
        return {} if v is None else v  # `sweep:` with nothing under it


class SweepConfig(Strict):
    """The `sweep:` section of a sweep YAML (everything else in the file is the base config)."""

    grid: dict[str, list[Any]] = {}  # field -> values; the runs are the product of the axes
    grids: list[dict[str, Any]] = []  # several grids; their union of points is run
    # (a grid's `first_seeds: N` runs that grid on the first N seeds only)
    seeds: list[int] | None = None  # train.seed of each point; None: the base config's seed
    dir: str | None = None  # the sweep folder; None: the base config's run_dir
    workers: int = 1  # runs trained at the same time (processes); 1: in this process
    threads: int | None = None  # torch threads per run; None: all cores / workers
    baselines: bool = True  # score a random-init encoder and raw pixels once per sweep
    probes: list[str] = []  # theory probes (maelab.probes) to run on every run
    eval: EvalConfig = EvalConfig()


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: its folder name and the field values that differ from the base."""

    name: str
    values: dict[str, Any]  # dotted field -> value (the grid axes of this point)
    seed: int

    def overrides(self, sweep_dir: Path) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for key, value in self.values.items():
            set_dotted(tree, key, value)
        set_dotted(tree, "train.seed", self.seed)
        tree["run_dir"] = str(sweep_dir / self.name)
        return tree


@dataclass
class SweepPlan:
    """A resolved sweep: its folder, base config tree, settings and points."""

    dir: Path
    base: dict[str, Any]
    settings: SweepConfig
    points: list[SweepPoint]
    keys: list[str] = field(default_factory=list)  # the grid axes, in order

    def config(self, point: SweepPoint) -> Config:
        return build_config(deep_merge(self.base, point.overrides(self.dir)))


# ---------------------------------------------------------------- grid (pure)
def format_value(value: Any) -> str:
    """A value as it appears in a run folder name (`0.75`, `true`, `none`, `a-b`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value)
    return str(value).replace("/", "_").replace(os.sep, "_").replace(" ", "_")


def run_name(values: dict[str, Any], seed: int) -> str:
    """`key=value__key=value__seed=N` in the order of `values`."""
    parts = [f"{k}={format_value(v)}" for k, v in values.items()]
    return "__".join([*parts, f"seed={seed}"])


def parse_grid_arg(text: str) -> tuple[str, list[Any]]:
    """`mask.ratio=0.1,0.5` or `data.crop_scale=[[0.2,1],[0.5,1]]` -> (key, values)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise ConfigError(
            f"--grid '{text}' must look like key=v1,v2,... (e.g. mask.ratio=0.5,0.75)"
        )
    if raw.startswith("["):
        values = parse_value(raw)
        if not isinstance(values, list):
            raise ConfigError(f"--grid '{text}': the bracketed value must be a YAML list")
    else:
        values = [parse_value(v.strip()) for v in raw.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"--grid '{text}' has no values")
    return key, values


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2]."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(
            f"--seeds '{text}' must be comma-separated integers, e.g. 0,1,2"
        ) from None
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds '{text}' must list one or more non-negative integers")
    return seeds


def expand_grids(
    grids: list[dict[str, Any]], seeds: list[int]
) -> tuple[list[SweepPoint], list[str]]:
    """The union of the grids' products, times the seeds (the first `first_seeds` of them where
    a grid says so); duplicates kept once, in order.

    Every point names every axis of every grid; a grid that lacks an axis leaves it at the base
    value (recorded as None here, filled from the base config by `expand_sweep`).
    """
    keys: list[str] = []
    for grid in grids:
        for key, values in grid.items():
            if key == GRID_SEEDS:
                continue
            if not isinstance(values, list) or not values:
                raise ConfigError(f"sweep grid axis '{key}' must be a non-empty list of values")
            if key not in keys:
                keys.append(key)
    points: list[SweepPoint] = []
    seen: set[str] = set()
    for grid in grids or [{}]:
        axes = [k for k in grid if k != GRID_SEEDS]
        grid_seeds = seeds[: first_seeds(grid[GRID_SEEDS])] if GRID_SEEDS in grid else seeds
        for combo in itertools.product(*(grid[k] for k in axes)):
            chosen = dict(zip(axes, combo, strict=True))
            for seed in grid_seeds:
                values = {k: chosen.get(k, _UNSET) for k in keys}
                point = SweepPoint("", values, seed)
                key = json.dumps([values, seed], sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    points.append(point)
    return points, keys


_UNSET = "__base__"
GRID_SEEDS = (
    "first_seeds"  # a grid run on the first N of the sweep's seeds only: {.., first_seeds: 3}
)


def first_seeds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"a grid's first_seeds={value!r} must be a positive integer, e.g. 3")
    return value


def get_dotted(tree: dict[str, Any], dotted: str) -> Any:
    """`tree["a"]["b"]` for "a.b"; None when a part is missing."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def expand_sweep(base: dict[str, Any], settings: SweepConfig, sweep_dir: str | Path) -> SweepPlan:
    """Points of a sweep with names, each config validated up front (a bad value fails early)."""
    grids = list(settings.grids)
    if settings.grid:
        grids = [deep_merge(g, settings.grid) for g in grids] if grids else [dict(settings.grid)]
    base_cfg = build_config(base)
    seeds = settings.seeds if settings.seeds is not None else [base_cfg.train.seed]
    raw, keys = expand_grids(grids, seeds)
    resolved = base_cfg.model_dump(mode="json")
    sweep_dir = Path(sweep_dir)
    points, names = [], set()
    for p in raw:
        # axes a grid leaves out take the base value, so that names stay comparable
        values = {k: (get_dotted(resolved, k) if v == _UNSET else v) for k, v in p.values.items()}
        point = SweepPoint(run_name(values, p.seed), values, p.seed)
        if point.name in names:
            continue
        names.add(point.name)
        try:
            build_config(deep_merge(base, point.overrides(sweep_dir)))
        except ConfigError as exc:
            raise ConfigError(f"sweep point {point.name}: {exc}") from None
        points.append(point)
    return SweepPlan(Path(sweep_dir), base, settings, points, keys)


def load_sweep(
    files: list[str],
    overrides: list[str] | None = None,
    grid_args: list[str] | None = None,
    seeds: str | None = None,
    out: str | None = None,
    base: dict[str, Any] | None = None,
    grids: list[dict[str, Any]] | None = None,
) -> SweepPlan:
    """A sweep from YAML files (base config + optional `sweep:` section), `key=value` overrides
    (`sweep.workers=2` reaches the sweep section), `--grid` axes and `--seeds`; `base`: a tree
    read already, under the files; `grids`: grids given in code (a study's conditions), added to
    the YAML's."""
    merged = load_config(files, overrides, SweepFile, base=base)
    tree: dict[str, Any] = dict(merged.model_extra or {})  # the base config
    section = dict(merged.sweep)
    if grids:
        section["grids"] = [*section.get("grids", []), *grids]
    if grid_args:
        grid = dict(section.get("grid") or {})
        for arg in grid_args:
            key, values = parse_grid_arg(arg)
            grid[key] = values
        section["grid"] = grid
    if seeds is not None:
        section["seeds"] = parse_seeds(seeds)
    settings = build_config(section, SweepConfig)
    if not settings.grid and not settings.grids:
        raise ConfigError(
            "the sweep has no grid: give --grid key=v1,v2 or a `sweep: grid:` section"
        )
    sweep_dir = out or settings.dir or tree.get("run_dir") or "runs/sweep"
    if Path(sweep_dir).exists() and not Path(sweep_dir).is_dir():
        raise ConfigError(
            f"sweep folder {sweep_dir} is a file, not a folder; pass --out a new folder "
            "(or this sweep's)"
        )
    return expand_sweep(tree, settings, sweep_dir)


# ---------------------------------------------------------------- checks and manifest
def config_mismatch(run_dir: Path, cfg: Config) -> list[str]:
    """Fields set in `cfg` whose value differs from the config stored in a run folder (run_dir
    excluded); fields `cfg` leaves unset are the run's recipe's to fill (maelab.recipes)."""
    path = RunFolder(run_dir).config
    if not path.is_file():
        return []
    try:
        stored = build_config(yaml.safe_load(path.read_text()) or {}).model_dump(mode="json")
    except (ConfigError, yaml.YAMLError):
        return ["config.yaml (unreadable)"]
    ours = cfg.model_dump(mode="json", exclude_unset=True)
    diffs: list[str] = []
    _diff(_only(stored, ours), ours, "", diffs)
    return [d for d in diffs if not d.startswith("run_dir")]


def _only(tree: Any, keys: Any) -> Any:
    """`tree` cut to the keys of `keys` (nested dicts)."""
    if not (isinstance(tree, dict) and isinstance(keys, dict)):
        return tree
    return {k: _only(tree.get(k), v) for k, v in keys.items()}


def _diff(a: Any, b: Any, prefix: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            _diff(a.get(k), b.get(k), f"{prefix}{k}.", out)
    elif a != b:
        out.append(f"{prefix[:-1]}: {a!r} in the folder vs {b!r} now")


def planned_steps(cfg: Config) -> int | None:
    """Iterations a run will take (epochs x batches per epoch); None when the size is unknown."""
    n = cfg.data.num_train or get_dataset(cfg.data.name).num_train
    if n is None:
        return None
    return cfg.train.epochs * max(1, n // cfg.train.batch_size)


def write_manifest(plan: SweepPlan) -> None:
    manifest = {
        "keys": plan.keys,
        "points": [{"name": p.name, "values": p.values, "seed": p.seed} for p in plan.points],
        "base": build_config(plan.base).model_dump(mode="json"),
        "sweep": plan.settings.model_dump(mode="json"),
    }
    write_json_atomic(RunFolder(plan.dir).manifest, manifest)
    RunFolder(plan.dir).base_config.write_text(dump_config(build_config(plan.base)))


def read_manifest(sweep_dir: str | Path) -> dict[str, Any]:
    """The `sweep.json` of a sweep folder ({} when there is none)."""
    return read_json(RunFolder(sweep_dir).manifest)


def check_plan(plan: SweepPlan) -> None:
    """Refuse to mix runs made with another config into this sweep (one line, with the fix)."""
    for p in plan.points:
        diffs = config_mismatch(plan.dir / p.name, plan.config(p))
        if diffs:
            raise ConfigError(
                f"run folder {plan.dir / p.name} was made with another config ({diffs[0]}); "
                "give the sweep another folder (--out) or delete that run"
            )
