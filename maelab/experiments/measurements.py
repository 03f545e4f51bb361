"""A study's measurements: per condition, per seed, the flat metrics of the run, read from a
sweep folder (its manifest and each run's `results.json`, through `maelab.run_records`).

A condition names sweep axis values; a point belongs to it when every named field has the
named value, a field that is no axis of the sweep taking the sweep's base value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maelab.errors import ConfigError
from maelab.experiments.plan import get_dotted, read_manifest
from maelab.metric_names import PIXELS
from maelab.run_records import read_baselines, read_run_results

PIXEL_PREFIX = f"{PIXELS}."


class _AtBase:
    """A condition's field held at the sweep's base value (`Study.plus` pins the fields another
    study varies, so that conditions of one table never share runs)."""

    def __repr__(self) -> str:
        return "AT_BASE"


AT_BASE = _AtBase()


@dataclass
class Measurements:
    """Per condition, per seed, the flat metrics of the run; the raw-pixel baseline's metrics;
    per condition, per seed, the run's learning curve."""

    runs: dict[str, dict[int, dict[str, float]]]
    pixels: dict[str, float] = field(default_factory=dict)
    curves: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def seeds(self, *conditions: str) -> list[int]:
        """Seeds that every named condition has, in order."""
        common = set.intersection(*(set(self.runs.get(c, {})) for c in conditions))
        return sorted(common)

    def values(self, condition: str, key: str, seeds: list[int]) -> list[float]:
        """`key` of the condition's run of each seed; a `pixels.<metric>` key not in the run
        reads the pixel baseline; nan where missing."""
        out = []
        for s in seeds:
            m = self.runs[condition][s]
            out.append(float(m.get(key, self.pixels.get(key.removeprefix(PIXEL_PREFIX), math.nan))))
        return out

    def has(self, condition: str) -> bool:
        return bool(self.runs.get(condition))


def members(
    points: list[tuple[dict[str, Any], int]],
    conditions: Mapping[str, Mapping[str, Any]],
    base: Mapping[str, Any],
) -> dict[str, list[tuple[int, int]]]:
    """Condition -> [(point index, seed)] of the points whose values match it; a field that is
    no axis of the sweep takes its value from `base` (the resolved base config)."""
    out: dict[str, list[tuple[int, int]]] = {n: [] for n in conditions}
    for i, (values, seed) in enumerate(points):
        for name, want in conditions.items():
            if all(values.get(k, get_dotted(dict(base), k)) == _wanted(v, k, base)
                   for k, v in want.items()):  # fmt: skip
                out[name].append((i, seed))
    return out


def _wanted(value: Any, key: str, base: Mapping[str, Any]) -> Any:
    """A condition's value of a field: `AT_BASE` reads the sweep's base value."""
    return get_dotted(dict(base), key) if value is AT_BASE else value


def read_measurements(
    sweep_dir: str | Path, conditions: Mapping[str, Mapping[str, Any]]
) -> Measurements:
    """The finished runs of each condition in a sweep folder, by seed, and the pixel baseline."""
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    if not manifest:
        raise ConfigError(f"{sweep_dir} is not a sweep folder (no sweep.json)")
    points = manifest["points"]
    found = members([(p["values"], int(p["seed"])) for p in points], conditions,
                    manifest.get("base", {}))  # fmt: skip
    runs: dict[str, dict[int, dict[str, float]]] = {}
    curves: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, chosen in found.items():
        for index, seed in chosen:
            res = read_run_results(sweep_dir / points[index]["name"])
            if res.finished:
                runs.setdefault(name, {})[seed] = res.metrics
            if res.curve:
                curves.setdefault(name, {})[str(seed)] = res.curve
    return Measurements(runs, dict(read_baselines(sweep_dir).pixels), curves)
