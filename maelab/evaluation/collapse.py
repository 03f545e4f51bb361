"""Dimensional collapse of trained encoders (Zhang, Wang, Wang 2022): checkpoints -> masked
views -> `maelab.metrics.collapse_stats` -> `collapse.json` and an overlay of the spectra.

The numbers are pure (maelab.metrics); this module feeds them from a model and a data split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from maelab.config import MaskConfig, override_data
from maelab.data import build_splits
from maelab.data.base import Split
from maelab.data.loader import eval_batches
from maelab.evaluation.features import encoder_tokens
from maelab.masking import MaskGeometry, draw_mask
from maelab.metrics import CollapseStats, collapse_stats
from maelab.models.checkpoints import load_pretrained
from maelab.models.mae import MaskedAutoencoder
from maelab.models.pooling import DEFAULT_POOL, Pool, pool_tokens
from maelab.plotting import save_figure
from maelab.run_folder import COLLAPSE_FIGURE, COLLAPSE_FILE, RunFolder, write_json_atomic


@torch.no_grad()
def encoder_views(
    model: MaskedAutoencoder,
    split: Split,
    mask: MaskConfig,
    num_images: int = 1024,
    pool: Pool = DEFAULT_POOL,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pooled features of the first `num_images` images: full image, masked view 1, view 2.

    The two views use independent masks drawn as `mask` (the run's mask config) says:
    strategy, ratio, unit; each is (N, D) on the CPU.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    geom = MaskGeometry(model.arch.grid_size, model.patch_size)
    g = torch.Generator().manual_seed(seed)
    full, v1, v2 = [], [], []
    seen = 0
    try:
        for imgs, _ in eval_batches(split, batch_size, model.arch.img_size, device):
            imgs = imgs[: num_images - seen]
            n = imgs.shape[0]
            full.append(pool_tokens(encoder_tokens(model, imgs), pool).float().cpu())
            for out in (v1, v2):
                view = encoder_tokens(model, imgs, draw_mask(mask, n, geom, g).to(device))
                out.append(pool_tokens(view, pool).float().cpu())
            seen += n
            if seen >= num_images:
                break
    finally:
        model.train(was_training)
    return torch.cat(full), torch.cat(v1), torch.cat(v2)


def model_collapse(
    model: MaskedAutoencoder,
    split: Split,
    mask: MaskConfig,
    label: str = "model",
    num_images: int = 1024,
    pool: Pool = DEFAULT_POOL,
    seed: int = 0,
) -> CollapseStats:
    """Collapse numbers of a model's encoder on a split (views masked as `mask` says)."""
    full, v1, v2 = encoder_views(model, split, mask, num_images, pool, seed)
    settings = {
        "pool": pool,
        "mask_ratio": mask.ratio,
        "strategy": mask.strategy,
        "unit": mask.unit,
        "seed": seed,
    }
    return collapse_stats(full, v1, v2, label=label, settings=settings)


def analyze_checkpoints(
    paths: list[str | Path],
    labels: list[str] | None = None,
    num_images: int = 1024,
    pool: Pool = DEFAULT_POOL,
    mask_ratio: float | None = None,
    device: str = "cpu",
    data_overrides: list[str] | None = None,
) -> list[CollapseStats]:
    """Collapse numbers of each checkpoint on its own test split.

    Views use each run's own mask strategy and unit, at `mask_ratio` (default: the run's ratio;
    give one ratio to compare runs trained with different ratios on equal terms).
    """
    out = []
    for i, path in enumerate(paths):
        model, cfg = load_pretrained(path, map_location=device)
        splits = build_splits(override_data(cfg.data, data_overrides or []))
        label = labels[i] if labels else RunFolder.of_checkpoint(path).root.name
        mask = cfg.mask if mask_ratio is None else cfg.mask.model_copy(update={"ratio": mask_ratio})
        out.append(model_collapse(model, splits.test, mask, label, num_images, pool))
    return out


def write_collapse_analysis(
    paths: list[str],
    out_dir: str | Path | None = None,
    labels: list[str] | None = None,
    num_images: int = 1024,
    pool: Pool = DEFAULT_POOL,
    mask_ratio: float | None = None,
    data_overrides: list[str] | None = None,
) -> tuple[list[CollapseStats], Path, Path]:
    """`analyze_checkpoints`, then `collapse.json` and an overlay of the spectra `collapse.png`
    in `out_dir` (default: the first checkpoint's run folder / analysis)."""
    stats = analyze_checkpoints(
        list(paths), labels, num_images, pool, mask_ratio, data_overrides=data_overrides
    )
    out = Path(out_dir) if out_dir else RunFolder.of_checkpoint(paths[0]).analysis
    records = [{**s.to_dict(), "checkpoint": str(p)} for s, p in zip(stats, paths, strict=True)]
    json_path = write_json_atomic(out / COLLAPSE_FILE, records)
    title = f"covariance spectrum of {pool} features ({stats[0].num_images} test images)"
    png = spectra_figure({s.label: s.spectrum for s in stats}, out / COLLAPSE_FIGURE, title)
    return stats, json_path, png


def spectra_figure(
    spectra: Mapping[str, Sequence[float]], path: str | Path, title: str = ""
) -> Path:
    """Covariance eigenvalues, normalised to sum 1, on a log scale against their index."""
    fig = Figure(figsize=(5.6, 3.6))
    ax = fig.subplots()
    for label, spec in spectra.items():
        s = np.asarray(spec, dtype=float)
        if s.size == 0 or s.sum() <= 0:
            continue
        p = s / s.sum()
        # round-off zeros (e.g. the direction LayerNorm removes) would stretch the log axis
        p = np.where(p > 1e-10, p, np.nan)
        ax.plot(np.arange(1, len(p) + 1), p, lw=1.3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel("eigenvalue / sum (log)")
    ax.set_title(title or "feature covariance spectrum", fontsize=8, wrap=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)
