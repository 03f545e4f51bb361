"""Pure slicing of seed-pooled run groups: which groups a section compares, and their series.

A sweep varies several axes at once; a section looks at one or two of them with the others held
at their reference values (the most common value of each axis among finished runs).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from maelab.config import MASK_RATIO_KEY, MASK_UNIT_KEY, OBJECTIVE_KEY
from maelab.report.collect import Group

RATIO, UNIT, OBJECTIVE = MASK_RATIO_KEY, MASK_UNIT_KEY, OBJECTIVE_KEY

Series = dict[float, tuple[float, float]]  # x -> (mean, std)


def reference_values(groups: Sequence[Group], keys: Sequence[str]) -> dict[str, Any]:
    """The most common value of each axis among finished runs (the 'base' of other slices)."""
    ref = {}
    for k in keys:
        counts = Counter(json.dumps(g.values.get(k)) for g in groups for _ in g.runs)
        if counts:
            ref[k] = json.loads(counts.most_common(1)[0][0])
    return ref


def slice_groups(groups: Sequence[Group], free: Sequence[str], ref: dict[str, Any]) -> list[Group]:
    """Groups whose axes outside `free` sit at their reference values."""
    return [g for g in groups if all(g.values.get(k) == v for k, v in ref.items() if k not in free)]


def series(groups: Sequence[Group], x_key: str, metric: str) -> Series:
    """metric (mean, std) by the numeric value of axis `x_key`."""
    out = {}
    for g in groups:
        x = g.values.get(x_key)
        if isinstance(x, (int, float)) and metric in g.mean:
            out[float(x)] = (g.mean[metric], g.std[metric])
    return out


def by_unit(groups: Sequence[Group], metric: str, unit_of: dict[int, float]) -> dict[float, Series]:
    """metric by mask unit, then by mask ratio (`unit_of`: group index -> its unit)."""
    out: dict[float, Series] = {}
    for i, g in enumerate(groups):
        ratio = g.values.get(RATIO, g.runs[0].setting(RATIO))
        if metric in g.mean and isinstance(ratio, (int, float)):
            out.setdefault(unit_of[i], {})[float(ratio)] = (g.mean[metric], g.std[metric])
    return out


def mask_unit_px(g: Group) -> float:
    """A group's mask unit in px; unset, one patch of its architecture (nan when unknown)."""
    run = g.runs[0]
    u = g.values.get(UNIT, run.setting(UNIT))
    if u is None and run.arch is not None:
        u = run.arch.patch_size
    return float(u) if u is not None else math.nan


def short_label(values: dict[str, Any]) -> str:
    """`mask.ratio=0.5, objective.name=mae` -> `ratio=0.5, objective=mae`."""
    parts = []
    for k, v in values.items():
        *parents, last = k.split(".")
        parts.append(f"{parents[-1] if last == 'name' and parents else last}={v}")
    return ", ".join(parts)


def axis_contexts(
    groups: Sequence[Group], keys: Sequence[str], axis: str, ref: dict[str, Any], default: Any
) -> list[tuple[dict[str, Any], dict[Any, Group]]]:
    """Groups by the values of every axis but `axis`: [(context, {axis value: group})].

    Contexts where `axis` takes several values come first (the comparisons); without any, the
    one context at the reference values (the most common axis values)."""
    others = [k for k in keys if k != axis]
    contexts: dict[str, tuple[dict[str, Any], dict[Any, Group]]] = {}
    for g in groups:
        ctx = {k: g.values.get(k) for k in others}
        value = g.values.get(axis, g.runs[0].setting(axis))
        key = json.dumps(ctx, sort_keys=True, default=str)
        contexts.setdefault(key, (ctx, {}))[1].setdefault(default if value is None else value, g)
    out = list(contexts.values())
    at_ref = [c for c in out if all(ref.get(k) == v for k, v in c[0].items())]
    multi = sorted((c for c in out if len(c[1]) > 1), key=lambda c: c not in at_ref)
    return multi or at_ref[:1] or out[:1]


def objective_contexts(
    groups: Sequence[Group], keys: Sequence[str], ref: dict[str, Any]
) -> list[tuple[dict[str, Any], dict[str, Group]]]:
    """`axis_contexts` over the objective; contexts holding both MAE and U-MAE first."""
    out = axis_contexts(groups, keys, OBJECTIVE, ref, "mae")
    out = [(ctx, {str(k): g for k, g in by.items()}) for ctx, by in out]
    paired = [c for c in out if {"mae", "umae"} <= set(c[1])]
    return paired or out
