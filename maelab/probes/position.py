"""Cao Q1: positional embeddings act as coordinates of the representation space.

Two measurements: (1) cosine similarity of the positional embeddings of two patches against
their grid distance (coordinates: similarity falls with distance); (2) per layer, how well a
ridge regression reads a token's (row, col) from the token itself, on held-out images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from maelab.data.base import ImageSet
from maelab.models.mae import MaskedAutoencoder
from maelab.probes.activations import encoder_states
from maelab.probes.inputs import (
    eval_mode,
    grid_coords,
    grid_distances,
    model_device,
    normalised,
    take,
)
from maelab.probes.ridge import r2, ridge_loo


@dataclass
class PositionResult:
    distances: list[float]  # distinct grid distances between two patches (patch units)
    similarity: list[float]  # mean cosine similarity of positional embeddings at each distance
    similarity_spearman: float  # Spearman rho of similarity vs distance over all pairs (< 0)
    layers: list[str]  # "embed" (patches + positions), then "block 0", "block 1", ...
    coordinate_r2: list[float]  # held-out ridge R^2 of tokens -> (row, col), per layer
    learnable_pos_embed: bool
    num_images: int


def similarity_by_distance(pos: torch.Tensor, grid: int) -> tuple[list[float], list[float], float]:
    """Positional embeddings ``pos`` (L, D) of a ``grid x grid`` raster: distinct distances,
    the mean cosine similarity at each, and the Spearman rho over all pairs i < j."""
    if pos.shape[0] != grid * grid:
        raise ValueError(f"{pos.shape[0]} embeddings do not fill a {grid}x{grid} grid")
    pn = F.normalize(pos.detach().double(), dim=-1)
    sim = pn @ pn.T  # (L, L)
    dist = grid_distances(grid)
    iu = torch.triu_indices(grid * grid, grid * grid, offset=1)
    d, s = dist[iu[0], iu[1]].numpy(), sim[iu[0], iu[1]].numpy()
    d_round = np.round(d, 6)
    distances = np.unique(d_round)
    means = [float(s[d_round == v].mean()) for v in distances]
    rho = float(spearmanr(d, s).statistic) if len(distances) > 1 else float("nan")
    return [float(v) for v in distances], means, rho


def coordinate_r2(tokens: torch.Tensor, grid: int, fit_fraction: float = 0.5) -> float:
    """Held-out R^2 of a ridge regression from each patch token to its (row, col).

    ``tokens`` (N, L, D) in raster order; the first ``fit_fraction`` of the images fit the
    regression (every token of those images is a sample), the rest are scored.
    """
    n, num_patches, d = tokens.shape
    if num_patches != grid * grid:
        raise ValueError(f"{num_patches} tokens do not fill a {grid}x{grid} grid")
    cut = int(round(n * fit_fraction))
    if cut < 1 or cut >= n:
        raise ValueError(f"{n} images cannot be split into fit and held-out parts")
    xy = grid_coords(grid).numpy()  # (L, 2)
    x = tokens.detach().double().cpu().numpy()
    xf, xh = x[:cut].reshape(-1, d), x[cut:].reshape(-1, d)
    yf, yh = np.tile(xy, (cut, 1)), np.tile(xy, (n - cut, 1))
    mean, std = xf.mean(axis=0), xf.std(axis=0)
    std[std == 0] = 1.0
    fit = ridge_loo((xf - mean) / std, yf)
    return r2(yh, fit.predict((xh - mean) / std))


def position_probe(
    model: MaskedAutoencoder,
    images: ImageSet,
    max_images: int | None = 256,
    pos_embed: str = "encoder",
) -> PositionResult:
    """Positional-embedding similarity vs distance (``pos_embed``: "encoder" or "decoder"
    table) and per-layer coordinate R^2 of the encoder's tokens on ``images``."""
    if pos_embed not in ("encoder", "decoder"):
        raise ValueError(f"pos_embed must be 'encoder' or 'decoder', got '{pos_embed}'")
    grid = model.arch.grid_size
    table = model.pos_embed if pos_embed == "encoder" else model.decoder_pos_embed
    distances, similarity, rho = similarity_by_distance(table[0, 1:], grid)
    subset = take(images, max_images)
    with eval_mode(model):
        states = encoder_states(model, normalised(subset, model_device(model)))
    layers = ["embed"] + [f"block {i}" for i in range(len(states) - 1)]
    scores = [coordinate_r2(x[:, 1:].float().cpu(), grid) for x in states]
    return PositionResult(
        distances=distances,
        similarity=similarity,
        similarity_spearman=rho,
        layers=layers,
        coordinate_r2=scores,
        learnable_pos_embed=model.arch.learnable_pos_embed,
        num_images=len(subset),
    )
