"""PNG figures of the probe results, one function per probe.

Drawn with matplotlib's object-oriented API (no pyplot, no backend switch), so importing maelab
never changes the backend a user's own plots use.

Every function takes a result (or several, labelled, to compare models) and a path, writes a
PNG there (creating its folder) and returns the path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from maelab.plotting import save_figure
from maelab.probes.decoder import DecoderAblationResult
from maelab.probes.identifiability import IdentifiabilityResult
from maelab.probes.interpolation import InterpolationResult
from maelab.probes.low_rank import LowRankResult
from maelab.probes.position import PositionResult
from maelab.probes.stability import StabilityResult

R = TypeVar("R")
LEVEL_LABELS = {
    "class": "class\n(accuracy)",
    "global": "global\nz_g",
    "region": "region\nz_r",
    "region_noise": "region\nnoise e_r",
    "cell": "cell\nz_c",
    "cell_noise": "cell\nnoise e_c",
    "control": "control\n(noise)",
}


def _labelled(
    results: R | Mapping[str, R] | Sequence[R], default: str = "model"
) -> list[tuple[str, R]]:
    if isinstance(results, Mapping):
        return list(results.items())
    if isinstance(results, Sequence) and not isinstance(results, str):
        return [(getattr(r, "label", f"{default} {i}"), r) for i, r in enumerate(results)]
    return [(getattr(results, "label", default), results)]  # type: ignore[list-item]


def _save(fig: Figure, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=120)


# ---------------------------------------------------------------- identifiability
def identifiability_figure(
    results: IdentifiabilityResult
    | Sequence[IdentifiabilityResult]
    | Mapping[str, IdentifiabilityResult],
    path: str | Path,
) -> Path:
    """Grouped bars per latent level, one bar per model; linear (left) and kernel (right)."""
    items = _labelled(results)
    levels = [lv for lv in LEVEL_LABELS if any(lv in r.levels() for _, r in items)]
    kinds = ["linear"]
    if any(not math.isnan(r.best(lv, "kernel")) for _, r in items for lv in levels):
        kinds.append("kernel")
    fig = Figure(figsize=(5.5 * len(kinds), 3.6))
    axes = fig.subplots(1, len(kinds), squeeze=False)
    x = np.arange(len(levels))
    width = 0.8 / len(items)
    for ax, kind in zip(axes[0], kinds, strict=True):
        for i, (label, r) in enumerate(items):
            values = [r.best(lv, kind) for lv in levels]
            ax.bar(
                x + (i - (len(items) - 1) / 2) * width, np.nan_to_num(values), width, label=label
            )
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_xticks(x, [LEVEL_LABELS[lv] for lv in levels], fontsize=7)
        ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.0)
        ax.set_ylabel("held-out R^2 (class: accuracy)")
        ax.set_title("ridge" if kind == "linear" else "RBF kernel ridge", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    return _save(fig, path)


def identifiability_trend_figure(
    points: Sequence[tuple[float, IdentifiabilityResult]],
    path: str | Path,
    xlabel: str = "mask ratio",
    kind: str = "linear",
    levels: Sequence[str] | None = None,
) -> Path:
    """Score per level against a swept value (e.g. mask ratio); several results at one x (seeds)
    give the mean line and a min-max band."""
    if not points:
        raise ValueError("no points to plot")
    levels = list(
        levels or [lv for lv in LEVEL_LABELS if lv != "control" and lv in points[0][1].levels()]
    )
    xs = sorted({x for x, _ in points})
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.subplots()
    for lv in levels:
        per_x = [[r.best(lv, kind) for x2, r in points if x2 == x] for x in xs]
        mean = [np.nanmean(v) for v in per_x]
        ax.plot(xs, mean, marker="o", label=LEVEL_LABELS[lv].replace("\n", " "))
        if any(len(v) > 1 for v in per_x):
            ax.fill_between(
                xs, [np.nanmin(v) for v in per_x], [np.nanmax(v) for v in per_x], alpha=0.2
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"held-out {'ridge' if kind == 'linear' else 'kernel'} R^2 (class: acc.)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


# ---------------------------------------------------------------- Q1
def position_figure(
    results: PositionResult | Mapping[str, PositionResult] | Sequence[PositionResult],
    path: str | Path,
) -> Path:
    """Positional-embedding similarity vs grid distance (left), coordinate R^2 per layer (right)."""
    items = _labelled(results)
    fig = Figure(figsize=(9, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    for label, r in items:
        ax1.plot(
            r.distances,
            r.similarity,
            marker="o",
            ms=3,
            label=f"{label} (rho {r.similarity_spearman:.2f})",
        )
        ax2.plot(range(len(r.layers)), r.coordinate_r2, marker="o", label=label)
    ax1.set_xlabel("grid distance (patches)")
    ax1.set_ylabel("mean cosine similarity")
    ax1.set_title("positional embeddings", fontsize=9)
    names = max((r.layers for _, r in items), key=len)
    ax2.set_xticks(range(len(names)), names, fontsize=7, rotation=30)
    ax2.set_ylabel("held-out R^2 of (row, col)")
    ax2.set_ylim(min(0.0, ax2.get_ylim()[0]), 1.02)
    ax2.set_title("position readable from tokens", fontsize=9)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a metric no run measured draws an empty panel
            ax.legend(fontsize=7)
    return _save(fig, path)


# ---------------------------------------------------------------- Q2
def low_rank_figure(result: LowRankResult, path: str | Path) -> Path:
    """Mean normalised singular values per patch size (left); per-image effective rank vs masked
    reconstruction error (right)."""
    fig = Figure(figsize=(9, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    for p in result.patch_sizes:
        s = result.mean_spectrum[p]
        ax1.plot(
            range(1, len(s) + 1),
            s,
            marker="o",
            ms=3,
            label=f"p={p}: eff. rank {result.effective_rank[p]:.1f} / {result.max_rank[p]}",
        )
    ax1.set_yscale("log")
    ax1.set_xlabel("singular value index k")
    ax1.set_ylabel("s_k / s_1 (mean over images)")
    ax1.set_title("patch-matrix spectrum", fontsize=9)
    ax1.legend(fontsize=7)
    ax2.scatter(result.image_effective_rank, result.image_error, s=6, alpha=0.6)
    ax2.set_xlabel(f"effective rank at p={result.model_patch_size}")
    ax2.set_ylabel(f"masked-patch error (ratio {result.mask_ratio})")
    ax2.set_title(f"Spearman rho {result.spearman_rho:.2f} (p={result.spearman_p:.2g})", fontsize=9)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    return _save(fig, path)


# ---------------------------------------------------------------- Q3
def stability_figure(
    results: StabilityResult | Mapping[str, StabilityResult] | Sequence[StabilityResult],
    path: str | Path,
) -> Path:
    """Relative update of the attention and MLP halves per block (left), adjacent CKA (right)."""
    items = _labelled(results)
    fig = Figure(figsize=(9, 3.4))
    ax1, ax2 = fig.subplots(1, 2)
    for i, (label, r) in enumerate(items):
        color = f"C{i}"
        blocks = range(len(r.attn_update))
        ax1.plot(blocks, r.attn_update, marker="o", color=color, label=f"{label} attention")
        ax1.plot(blocks, r.mlp_update, marker="s", ls="--", color=color, label=f"{label} MLP")
        ax2.plot(blocks, r.adjacent_cka, marker="o", color=color, label=label)
    ax1.set_ylabel("||x_out - x_in|| / ||x_in||")
    ax1.set_title("relative update per half-block", fontsize=9)
    ax2.set_ylabel("linear CKA(block input, output)")
    ax2.set_ylim(min(0.0, ax2.get_ylim()[0]), 1.02)
    ax2.set_title("adjacent-layer similarity", fontsize=9)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel(f"{items[0][1].part} block")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a metric no run measured draws an empty panel
            ax.legend(fontsize=7)
    return _save(fig, path)


# ---------------------------------------------------------------- Q5
def interpolation_figure(result: InterpolationResult, path: str | Path) -> Path:
    """Histogram of masked queries' attention distance (left), attention shares vs uniform
    (middle), knock-out error increase near vs far (right)."""
    att, ko = result.attention, result.knockout
    fig = Figure(figsize=(12, 3.4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    if att.query_distances:
        values = att.query_distances + att.query_uniform_distances
        bins = np.linspace(0.0, max(values) * 1.02, 31)
        ax1.hist(att.query_distances, bins=bins, alpha=0.7, label="model")
        ax1.hist(
            att.query_uniform_distances,
            bins=bins,
            histtype="step",
            color="black",
            label="uniform, same queries",
        )
    ax1.axvline(att.mean_distance, color="C1", label=f"model mean {att.mean_distance:.2f}")
    ax1.axvline(
        att.uniform_distance, color="black", ls="--", label=f"uniform {att.uniform_distance:.2f}"
    )
    ax1.set_xlabel("attention distance of a masked query (patches)")
    ax1.set_ylabel("queries x heads x blocks")
    ax1.set_title("decoder attention distance", fontsize=9)
    ax1.legend(fontsize=7)
    names = ["8 nearest", "visible"]
    model_vals = [att.near_share, att.visible_share]
    uniform_vals = [att.uniform_near_share, att.uniform_visible_share]
    x = np.arange(len(names))
    ax2.bar(x - 0.2, np.nan_to_num(model_vals), 0.4, label="model")
    ax2.bar(x + 0.2, np.nan_to_num(uniform_vals), 0.4, label="uniform", color="gray")
    ax2.set_xticks(x, names)
    ax2.set_ylabel("share of attention mass")
    ax2.set_ylim(0, 1)
    ax2.set_title("where masked queries look", fontsize=9)
    ax2.legend(fontsize=7)
    ax3.bar(
        [0, 1],
        [ko.near_increase, ko.far_increase],
        yerr=[ko.near_increase_se, ko.far_increase_se],
        color=["C3", "C0"],
        capsize=4,
    )
    ax3.set_xticks(
        [0, 1],
        [
            f"{ko.num_knocked} nearest\n(d={ko.near_distance:.1f})",
            f"{ko.num_knocked} farthest\n(d={ko.far_distance:.1f})",
        ],
    )
    ax3.axhline(0.0, color="black", lw=0.6)
    ax3.set_ylabel("error increase on the target patch")
    ax3.set_title(
        f"knock-out, {ko.num_targets} targets\nnear - far = {ko.near_minus_far:.4f}"
        f" +/- {ko.near_minus_far_se:.4f}",
        fontsize=8,
    )
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    return _save(fig, path)


# ---------------------------------------------------------------- Q4
def decoder_ablation_figure(result: DecoderAblationResult, path: str | Path) -> Path:
    """One panel per metric: value against decoder depth, one line per decoder width."""
    metrics = result.metrics
    fig = Figure(figsize=(4 * len(metrics), 3.2))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        for i, w in enumerate(result.widths):
            cells = [c for c in result.cells if c.width == w and c.count[m] > 0]
            if not cells:
                continue
            ax.errorbar(
                [c.depth for c in cells],
                [c.mean[m] for c in cells],
                yerr=[c.std[m] for c in cells],
                marker="o",
                capsize=3,
                color=f"C{i}",
                label=f"width {w}",
            )
        ax.set_xlabel("decoder depth")
        ax.set_xticks(result.depths)
        ax.set_title(m, fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a metric no run measured draws an empty panel
            ax.legend(fontsize=7)
    return _save(fig, path)
