"""Dimensional collapse of an encoder's features (Zhang, Wang, Wang 2022).

Numbers: the covariance eigenvalue spectrum of pooled full-image features, effective rank
(Roy & Vetterli), RankMe (Garrido et al.), and alignment / uniformity (Wang & Isola) of two
masked views of each image. `collapse_stats` is pure (tensors in, numbers out); the other
functions feed it from a model and a data split.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from maelab.data.base import Split
from maelab.data.loader import eval_batches
from maelab.masking import MaskGeometry, mask_noise
from maelab.metrics import alignment, covariance_spectrum, effective_rank, rankme, uniformity
from maelab.models.mae import MaskedAutoencoder


@dataclass
class CollapseStats:
    """Collapse numbers of one encoder (or of raw pixels) on one set of images."""

    label: str
    dim: int  # feature width
    num_images: int
    effective_rank: float
    rankme: float
    alignment: float  # of two masked views; nan when no views were given
    uniformity: float  # of the first masked view (or of the full-image features without views)
    spectrum: list[float] = field(default_factory=list)  # covariance eigenvalues, descending
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def rank_fraction(self) -> float:
        """Effective rank as a share of the feature width (1 = no collapse)."""
        return self.effective_rank / self.dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollapseStats:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def collapse_stats(
    features: torch.Tensor,
    view1: torch.Tensor | None = None,
    view2: torch.Tensor | None = None,
    label: str = "model",
    settings: dict[str, Any] | None = None,
) -> CollapseStats:
    """Collapse numbers from full-image features (N, d) and optional paired masked views (M, d).

    Uniformity is measured on the masked view (where U-MAE's term acts) when one is given.
    """
    spec = covariance_spectrum(features)
    has_views = view1 is not None and view2 is not None
    return CollapseStats(
        label=label,
        dim=int(features.shape[1]),
        num_images=int(features.shape[0]),
        effective_rank=effective_rank(features),
        rankme=rankme(features),
        alignment=alignment(view1, view2) if has_views else math.nan,
        uniformity=uniformity(view1 if has_views else features),
        spectrum=[float(v) for v in spec],
        settings=dict(settings or {}),
    )


def pool(latent: torch.Tensor, kind: str) -> torch.Tensor:
    """(N, 1 + K, D) encoder tokens -> (N, D): the cls token or the mean of the patch tokens."""
    if kind == "cls":
        return latent[:, 0]
    if kind == "mean":
        return latent[:, 1:].mean(dim=1)
    raise ValueError(f"unknown pooling '{kind}' (valid: cls, mean)")


@torch.no_grad()
def encoder_views(
    model: MaskedAutoencoder,
    split: Split,
    num_images: int = 1024,
    pool_kind: str = "cls",
    mask_ratio: float = 0.75,
    strategy: str = "random",
    unit: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pooled features of the first `num_images` images: full image, masked view 1, view 2.

    The two views use independent masks of the given strategy; each is (N, D) on the CPU.
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
            full.append(pool(model.encode(imgs), pool_kind).float().cpu())
            for out in (v1, v2):
                noise = mask_noise(strategy, n, geom, mask_ratio, unit, g).to(device)
                latent, _, _ = model.forward_encoder(imgs, mask_ratio, noise)
                out.append(pool(latent, pool_kind).float().cpu())
            seen += n
            if seen >= num_images:
                break
    finally:
        model.train(was_training)
    return torch.cat(full), torch.cat(v1), torch.cat(v2)


def model_collapse(
    model: MaskedAutoencoder,
    split: Split,
    label: str = "model",
    num_images: int = 1024,
    pool_kind: str = "cls",
    mask_ratio: float = 0.75,
    strategy: str = "random",
    unit: int | None = None,
    seed: int = 0,
) -> CollapseStats:
    """Collapse numbers of a model's encoder on a split (views masked as given)."""
    full, v1, v2 = encoder_views(
        model, split, num_images, pool_kind, mask_ratio, strategy, unit, seed
    )
    settings = {
        "pool": pool_kind,
        "mask_ratio": mask_ratio,
        "strategy": strategy,
        "unit": unit,
        "seed": seed,
    }
    return collapse_stats(full, v1, v2, label=label, settings=settings)


def analyze_checkpoints(
    paths: list[str | Path],
    labels: list[str] | None = None,
    num_images: int = 1024,
    pool_kind: str = "cls",
    mask_ratio: float | None = None,
    device: str = "cpu",
) -> list[CollapseStats]:
    """Collapse numbers of each checkpoint on its own test split.

    Views use each run's own mask strategy and unit, at `mask_ratio` (default: the run's ratio;
    give one ratio to compare runs trained with different ratios on equal terms).
    """
    from maelab.data import build_splits
    from maelab.evaluation.checkpoints import load_pretrained, run_dir_of

    out = []
    for i, path in enumerate(paths):
        model, cfg = load_pretrained(path, map_location=device)
        splits = build_splits(cfg.data)
        label = labels[i] if labels else run_dir_of(path).name
        ratio = cfg.mask.ratio if mask_ratio is None else mask_ratio
        out.append(
            model_collapse(
                model,
                splits.test,
                label,
                num_images,
                pool_kind,
                ratio,
                cfg.mask.strategy,
                cfg.mask.unit,
            )
        )
    return out


def write_collapse_analysis(
    paths: list[str],
    out_dir: str | Path | None = None,
    labels: list[str] | None = None,
    num_images: int = 1024,
    pool_kind: str = "cls",
    mask_ratio: float | None = None,
) -> tuple[list[CollapseStats], Path, Path]:
    """`analyze_checkpoints`, then `collapse.json` and an overlay of the spectra `collapse.png`
    in `out_dir` (default: the first checkpoint's run folder / analysis)."""
    import json

    from maelab.evaluation.checkpoints import run_dir_of
    from maelab.report.figures import spectra_figure

    stats = analyze_checkpoints(list(paths), labels, num_images, pool_kind, mask_ratio)
    out = Path(out_dir) if out_dir else run_dir_of(paths[0]) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "collapse.json"
    records = [{**s.to_dict(), "checkpoint": str(p)} for s, p in zip(stats, paths, strict=True)]
    json_path.write_text(json.dumps(records, indent=2) + "\n")
    title = f"covariance spectrum of {pool_kind} features ({stats[0].num_images} test images)"
    png = spectra_figure({s.label: s.spectrum for s in stats}, out / "collapse.png", title)
    return stats, json_path, png
