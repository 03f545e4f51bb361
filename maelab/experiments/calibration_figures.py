"""The calibration's figures: trained vs optimal reach, the ViT's learning curve against the
Bayes bound, and the Kong map (PNG files; the numbers come from the rows)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from maelab.experiments.calibration_train import VitOutcome
from maelab.plotting import new_figure, save_figure
from maelab.theory.kong import KongPoint

ReachCurve = dict[tuple[int, float], tuple[float, float]]  # (patch, ratio) -> (trained, optimum)


def reach_figure(panels: dict[str, ReachCurve], path: Path) -> Path:
    """Reach over the mask ratio, one line per patch size: optimum (line), trained (circles);
    ratio 0 is the plain autoencoder."""
    fig = new_figure(figsize=(4.5 * len(panels), 3.6))
    for i, (title, curve) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ae = [v for (p, r), v in curve.items() if r == 0]
        if ae:
            ax.axhline(ae[0][1], color="grey", ls="--", lw=1, label="plain AE (optimum)")
            ax.plot([0.0], [ae[0][0]], "o", color="grey", mfc="none")
        for j, patch in enumerate(sorted({p for p, r in curve if r > 0})):
            pts = sorted((r, *v) for (p, r), v in curve.items() if p == patch and r > 0)
            x, trained, optimum = np.array(pts).T
            ax.plot(x, optimum, "-", color=f"C{j}", label=f"patch {patch} (optimum)")
            ax.plot(x, trained, "o", color=f"C{j}", mfc="none")
        ax.set_title(title)
        ax.set_xlabel("mask ratio (circles: trained)")
        ax.set_ylabel("reach (px)")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def bound_figure(vit: VitOutcome, bound: float, linear: float, trivial: float, path: Path) -> Path:
    """The ViT's training loss (fresh images each step) against the Bayes bound."""
    fig = new_figure(figsize=(5, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    steps, losses = np.array(vit.curve).T if vit.curve else (np.array([]), np.array([]))
    ax.plot(steps, losses, ".-", lw=1, label="micro ViT, training batch (fresh images)")
    ax.errorbar([vit.steps], [vit.heldout], yerr=[2 * vit.stderr], fmt="s", color="C3",
                label=f"held-out {vit.heldout:.3f}")  # fmt: skip
    ax.axhline(bound, color="k", lw=1, label=f"Bayes bound {bound:.3f}")
    ax.axhline(linear, color="C2", ls=":", label=f"best linear MAE {linear:.3f}")
    ax.axhline(trivial, color="grey", ls="--", label=f"predict zero {trivial:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel("masked loss (pixel, norm-pix off)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def kong_map_figure(points: Sequence[KongPoint], path: Path) -> Path:
    """Kong's contrast (e_r share under patch minus region units), one panel per code width:
    pixel noise across, noise scales (s_r, s_c) down; each cell prints the contrast, with an x
    where region units do not keep the least e_r (the order fails)."""
    dims = sorted({p.code_dim for p in points})
    noises = sorted({p.pixel_noise for p in points})
    scales = sorted({(p.region_noise_std, p.cell_noise_std) for p in points})
    fig = new_figure(figsize=(4.2 * len(dims), 3.4))
    lim = max(abs(p.effect) for p in points) or 1.0
    for i, k in enumerate(dims):
        ax = fig.add_subplot(1, len(dims), i + 1)
        grid = np.full((len(scales), len(noises)), np.nan)
        for p in (p for p in points if p.code_dim == k):
            row = scales.index((p.region_noise_std, p.cell_noise_std))
            col = noises.index(p.pixel_noise)
            grid[row, col] = p.effect
            mark = "" if p.holds else " x"
            ax.text(col, row, f"{p.effect:.3f}{mark}", ha="center", va="center", fontsize=7)
        image = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(noises)), [f"{n:g}" for n in noises])
        ax.set_yticks(range(len(scales)), [f"{a:g}, {b:g}" for a, b in scales])
        ax.set_xlabel("pixel noise (x signal std)")
        ax.set_ylabel("s_r, s_c" if i == 0 else "")
        ax.set_title(f"k = {k}: e_r share, patch - region units", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05)
    return save_figure(fig, path)
