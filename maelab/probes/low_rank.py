"""Cao Q2: patchifying keeps the information of (approximately) low-rank images at lower cost.

Each image is read as its patch matrix (L patches x p*p*C values); its singular values show how
low-rank the image is at patch size p. Per image we summarise the decay by the effective rank
``exp(H(s / sum s))`` (Roy & Vetterli) and by the share of energy ``sum s^2`` in the top
singular values, and correlate low-rankness with the model's masked-patch reconstruction error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.stats import spearmanr

from maelab.config import MaskConfig
from maelab.data.base import ImageSet
from maelab.masking import MaskGeometry, mask_noise_for
from maelab.models.mae import MaskedAutoencoder, patchify
from maelab.probes.activations import patch_errors
from maelab.probes.inputs import eval_mode, model_device, normalised, take, unit_interval


@dataclass
class LowRankResult:
    patch_sizes: list[int]
    max_rank: dict[int, int]  # min(L, p*p*C) per patch size
    mean_spectrum: dict[int, list[float]]  # mean of s_k / s_1 over images, k = 1 .. max_rank
    effective_rank: dict[int, float]  # mean over images
    relative_effective_rank: dict[int, float]  # mean of effective rank / max_rank
    top_energy: dict[int, float]  # mean share of sum s^2 in the top ceil(top_fraction * max_rank)
    top_fraction: float
    model_patch_size: int
    image_effective_rank: list[float]  # per image, at the model's patch size
    image_error: list[float]  # per image: mean masked-patch error of the model
    spearman_rho: float  # Spearman rho (image_effective_rank, image_error)
    spearman_p: float
    mask_ratio: float
    num_images: int


def patch_singular_values(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Singular values of each image's patch matrix: (N, C, H, W) -> (N, min(L, p*p*C)),
    descending, float64."""
    return torch.linalg.svdvals(patchify(imgs.double(), patch_size))


def spectrum_effective_rank(s: torch.Tensor) -> torch.Tensor:
    """Effective rank ``exp(-sum p log p)``, ``p = s / sum(s)``, of each row of singular values
    (N, r) -> (N,); 0 for an all-zero row."""
    total = s.sum(dim=-1, keepdim=True)
    p = s / total.clamp_min(torch.finfo(s.dtype).tiny)
    er = torch.exp(-torch.special.xlogy(p, p).sum(dim=-1))
    return torch.where(total.squeeze(-1) > 0, er, torch.zeros_like(er))


def top_energy_share(s: torch.Tensor, k: int) -> torch.Tensor:
    """Share of ``sum s^2`` in the top ``k`` singular values, per row (N, r) -> (N,)."""
    e = s.pow(2)
    return e[:, :k].sum(dim=-1) / e.sum(dim=-1).clamp_min(torch.finfo(s.dtype).tiny)


def masked_error_per_image(
    model: MaskedAutoencoder,
    imgs: torch.Tensor,
    mask_ratio: float = 0.75,
    num_masks: int = 2,
    seed: int = 0,
    strategy: str = "random",
    unit: int | None = None,
) -> torch.Tensor:
    """Mean reconstruction error over the removed patches of each image (N,), averaged over
    ``num_masks`` fixed random masks (the same masks for every model given the seed)."""
    g = torch.Generator().manual_seed(seed)
    geom = MaskGeometry(model.arch.grid_size, model.patch_size)
    mask_cfg = MaskConfig(strategy=strategy, ratio=mask_ratio, unit=unit)
    total = torch.zeros(imgs.shape[0], dtype=torch.float64)
    with eval_mode(model):
        for _ in range(num_masks):
            noise = mask_noise_for(mask_cfg, imgs.shape[0], geom, g).to(imgs.device)
            err, mask = patch_errors(model, imgs, mask_ratio, noise)
            per_image = (err * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
            total += per_image.double().cpu()
    return total / num_masks


def low_rank_probe(
    model: MaskedAutoencoder,
    images: ImageSet,
    patch_sizes: tuple[int, ...] = (2, 4, 8),
    max_images: int | None = 256,
    mask_ratio: float = 0.75,
    num_masks: int = 2,
    top_fraction: float = 0.25,
    seed: int = 0,
) -> LowRankResult:
    """Singular-value decay of each image's patch matrix (pixels in [0, 1]) per patch size, and
    the Spearman correlation of the per-image effective rank (at the model's patch size) with
    the model's masked-patch reconstruction error. Patch sizes not dividing the image are
    skipped."""
    subset = take(images, max_images)
    pixels = unit_interval(subset)  # the image itself, not the standardised model input
    size = pixels.shape[-1]
    sizes = sorted({p for p in patch_sizes if size % p == 0} | {model.patch_size})
    max_rank: dict[int, int] = {}
    mean_spectrum: dict[int, list[float]] = {}
    effective: dict[int, float] = {}
    relative: dict[int, float] = {}
    top: dict[int, float] = {}
    image_er = None
    for p in sizes:
        s = patch_singular_values(pixels, p)  # (N, r)
        r = s.shape[1]
        er = spectrum_effective_rank(s)
        max_rank[p] = r
        decay = s / s[:, :1].clamp_min(torch.finfo(s.dtype).tiny)
        mean_spectrum[p] = decay.mean(dim=0).tolist()
        effective[p] = float(er.mean())
        relative[p] = float((er / r).mean())
        top[p] = float(top_energy_share(s, math.ceil(top_fraction * r)).mean())
        if p == model.patch_size:
            image_er = er
    assert image_er is not None
    errors = masked_error_per_image(
        model, normalised(subset, model_device(model)), mask_ratio, num_masks, seed
    )
    rho, pval = spearmanr(image_er.numpy(), errors.numpy())
    return LowRankResult(
        patch_sizes=sizes,
        max_rank=max_rank,
        mean_spectrum=mean_spectrum,
        effective_rank=effective,
        relative_effective_rank=relative,
        top_energy=top,
        top_fraction=top_fraction,
        model_patch_size=model.patch_size,
        image_effective_rank=image_er.tolist(),
        image_error=errors.tolist(),
        spearman_rho=float(rho),
        spearman_p=float(pval),
        mask_ratio=mask_ratio,
        num_images=len(subset),
    )
