"""PNG figures of the report: each function takes numbers and a path, writes the PNG and returns
the path. Drawn on plain matplotlib Figures (no pyplot), so the user's backend is left alone."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from maelab.plotting import new_figure, save_figure

Series = Mapping[float, tuple[float, float]]  # x -> (mean, std)


def _save(fig: Figure, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=110)


def curves_figure(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    path: str | Path,
    title: str = "",
    ylabel: str = "training loss",
) -> Path:
    """A metric (the training loss) against step, one line per run (log-scaled when it spans
    > 10x and stays positive)."""
    fig = new_figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
    lows, highs = [], []
    for label, pts in curves.items():
        if not pts:
            continue
        steps, losses = zip(*pts, strict=True)
        ax.plot(steps, losses, lw=1.1, label=label)
        lows.append(min(losses))
        highs.append(max(losses))
    if lows and min(lows) > 0 and max(highs) / min(lows) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if len(curves) <= 12:
        ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def heatmap_figure(
    cells: Mapping[str, Mapping[tuple[float, float], tuple[float, float]]],
    path: str | Path,
    xlabel: str = "mask ratio",
    ylabel: str = "mask unit (px)",
) -> Path:
    """One heat map per panel (e.g. latent level): cell (x, y) -> mean, annotated mean±std."""
    panels = list(cells)
    fig = new_figure(figsize=(2.7 * len(panels) + 0.6, 2.8))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        data = cells[panel]
        xs = sorted({x for x, _ in data})
        ys = sorted({y for _, y in data})
        grid = np.full((len(ys), len(xs)), np.nan)
        for (x, y), (m, _) in data.items():
            grid[ys.index(y), xs.index(x)] = m
        finite = grid[np.isfinite(grid)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        im = ax.imshow(
            grid, cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1e-6, aspect="auto"
        )
        for (x, y), (m, s) in data.items():
            if math.isfinite(m):
                text = f"{m:.2f}" + (f"\n±{s:.2f}" if math.isfinite(s) and s > 0 else "")
                shade = (m - lo) / (hi - lo) if hi > lo else 0.5
                ax.text(
                    xs.index(x),
                    ys.index(y),
                    text,
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="black" if shade > 0.5 else "white",
                )
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs], fontsize=7)
        ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys], fontsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(panel, fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel(ylabel, fontsize=8)
    return _save(fig, path)


def lines_figure(
    panels: Mapping[str, Mapping[str, Series]],
    path: str | Path,
    xlabel: str = "mask ratio",
    baselines: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """One panel per metric; one line per series (e.g. mask unit) with ±std error bars; dashed
    horizontal lines for baselines (panel -> label -> value)."""
    names = list(panels)
    fig = new_figure(figsize=(3.3 * len(names), 3.0))
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for label, series in panels[name].items():
            xs = sorted(series)
            ms = [series[x][0] for x in xs]
            ss = [series[x][1] if math.isfinite(series[x][1]) else 0.0 for x in xs]
            ax.errorbar(xs, ms, yerr=ss, marker="o", ms=3, capsize=2, lw=1.2, label=label)
        for i, (label, value) in enumerate((baselines or {}).get(name, {}).items()):
            if math.isfinite(value):
                ax.axhline(value, ls="--", lw=0.9, color=f"C{7 + i}", label=label)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    return _save(fig, path)


def bars_figure(
    rows: Mapping[str, Mapping[str, tuple[float, float]]], metrics: Sequence[str], path: str | Path
) -> Path:
    """One panel per metric, one bar (±std) per row label (e.g. MAE, U-MAE, random init)."""
    fig = new_figure(figsize=(2.4 * len(metrics), 2.8))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    labels = list(rows)
    for ax, metric in zip(axes[0], metrics, strict=True):
        ms = [rows[lb].get(metric, (math.nan, math.nan))[0] for lb in labels]
        ss = [rows[lb].get(metric, (math.nan, math.nan))[1] for lb in labels]
        ss = [s if math.isfinite(s) else 0.0 for s in ss]
        ax.bar(
            range(len(labels)),
            np.nan_to_num(ms),
            yerr=ss if any(ss) else None,
            capsize=3,
            color=[f"C{i}" for i in range(len(labels))],
        )
        ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=20)
        ax.set_title(metric, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
