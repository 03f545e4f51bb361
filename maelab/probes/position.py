"""Cao Q1: positional embeddings act as coordinates of the representation space.

Two measurements: (1) cosine similarity of the positional embeddings of two patches against
their grid distance (coordinates: similarity falls with distance); (2) per layer, how well a
ridge regression reads a token's (row, col) from the token itself, on held-out images.

The Q1 experiment (`q1_experiment`) asks whether the table training made is a coordinate
system: per position, the rank correlation of its embedding's similarity to the others with
their grid distance, against the same table with its rows assigned to shuffled positions, minus
the same contrast of the untrained network's table (the placebo: what the start already had);
beside it, how far training moved the tables, and (row, col) read from the tokens at positions
the ridge never saw, for the trained and the untrained model.
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
from maelab.probes.questions import QuestionResult
from maelab.probes.ridge import r2, ridge_loo

# Margin of the Q1 row, in units of the per-position Spearman rho (docs/theory.md, Cao Q1):
# random tables give per-position rho with sd ~ 1/sqrt(L - 2) (0.13 at 64 positions), so a
# mean below 0.1 is within one such sd of no structure at all.
Q1_MARGIN = 0.1
Q1_CLAIM = "positional embeddings act as coordinates (similarity falls with grid distance)"


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


# ---------------------------------------------------------------- Q1 as an experiment
def position_locality(pos: torch.Tensor, grid: int) -> np.ndarray:
    """Per position i (L,): minus the Spearman rho, over j != i, of the cosine similarity of
    embeddings i and j against the grid distance of positions i and j. > 0 when nearer
    positions have more similar embeddings; ~0 for a table without spatial structure."""
    if pos.shape[0] != grid * grid:
        raise ValueError(f"{pos.shape[0]} embeddings do not fill a {grid}x{grid} grid")
    pn = F.normalize(pos.detach().double().cpu(), dim=-1)
    # rounded: float noise must not order similarities that a table makes exactly equal
    sim, dist = np.round((pn @ pn.T).numpy(), 10), grid_distances(grid).numpy()
    others = ~np.eye(grid * grid, dtype=bool)
    return np.array(
        [-spearmanr(dist[i, others[i]], sim[i, others[i]]).statistic for i in range(len(sim))]
    )


def heldout_position_r2(
    tokens: torch.Tensor, grid: int, folds: int = 4, seed: int = 0
) -> np.ndarray:
    """Per image (N,): R^2 of (row, col) predicted for each position by a ridge fitted on the
    other folds' positions (all images), never on that position. ``tokens`` (N, L, D).

    64 positions in 128 dimensions are memorised by any in-sample ridge; a position the ridge
    never saw is read only when the tokens hold coordinates that extend across the grid.
    """
    n, num_patches, d = tokens.shape
    if num_patches != grid * grid:
        raise ValueError(f"{num_patches} tokens do not fill a {grid}x{grid} grid")
    xy = grid_coords(grid).numpy()  # (L, 2)
    x = tokens.detach().double().cpu().numpy()
    fold = np.random.default_rng(seed).permutation(num_patches) % folds  # (L,)
    pred = np.zeros((n, num_patches, 2))
    for f in range(folds):
        fit, held = fold != f, fold == f
        xf = x[:, fit].reshape(-1, d)
        mean, std = xf.mean(axis=0), xf.std(axis=0)
        std[std == 0] = 1.0
        model = ridge_loo((xf - mean) / std, np.tile(xy[fit], (n, 1)))
        pred[:, held] = model.predict((x[:, held].reshape(-1, d) - mean) / std).reshape(n, -1, 2)
    resid = ((pred - xy) ** 2).sum(axis=(1, 2))
    return 1.0 - resid / ((xy - xy.mean(axis=0)) ** 2).sum()


def table_moved(trained: torch.Tensor, start: torch.Tensor) -> float:
    """How far training moved a table from its initial values: ``||T - T0||_F / ||T0||_F``
    over every row (0 for a fixed table, ~1 for one that moved by its own size)."""
    t, t0 = trained.detach().double().cpu(), start.detach().double().cpu()
    return float((t - t0).norm() / t0.norm().clamp_min(1e-12))


def q1_experiment(
    model: MaskedAutoencoder,
    images: ImageSet,
    untrained: MaskedAutoencoder | None = None,
    max_images: int | None = 256,
    seed: int = 0,
) -> QuestionResult:
    """q1_experiment(model, images, untrained=None, max_images=256, seed=0) -> QuestionResult

    Per position, `position_locality` of the encoder's table minus that of the same table with
    its rows on shuffled positions (paired over positions, predicted: an increase). With
    ``untrained`` (the run's own start, ``MaskedAutoencoder(model.arch, init_seed=seed)``, as
    the runner gives it), the same contrast of the untrained table (same permutation) is the
    placebo, and the row is decided on trained - untrained: what training did to the table. A
    fixed table never moves (the effect is exactly 0) and a sin-cos start is a coordinate table
    by construction, so only a learnable random-init table makes a prediction row; the others
    are instrument rows. ``details``: how far training moved the encoder's and the decoder's
    tables (`table_moved`, cls row included), and the held-out-position coordinate R^2 of the
    tokens (embedding, last block) of both networks. Needs the encoder only."""
    grid = model.arch.grid_size
    table = model.pos_embed[0, 1:].detach().cpu()  # (L, D), the cls entry left out
    perm = torch.randperm(grid * grid, generator=torch.Generator().manual_seed(seed))
    treated = position_locality(table, grid)
    shuffled = position_locality(table[perm], grid)
    paired = treated - shuffled
    details = {"learnable": float(model.arch.learnable_pos_embed)}
    subset = take(images, max_images)
    for name, m in (("model", model), ("untrained", untrained)):
        if m is None:
            continue
        with eval_mode(m):
            states = encoder_states(m, normalised(subset, model_device(m)))
        details[f"heldout_r2_embed_{name}"] = float(
            heldout_position_r2(states[0][:, 1:].float(), grid, seed=seed).mean()
        )
        details[f"heldout_r2_last_{name}"] = float(
            heldout_position_r2(states[-1][:, 1:].float(), grid, seed=seed).mean()
        )
    placebo = None
    if untrained is not None:
        start = untrained.pos_embed[0, 1:].detach().cpu()
        placebo = position_locality(start, grid) - position_locality(start[perm], grid)
        details["locality_untrained"] = float(position_locality(start, grid).mean())
        details["contrast_untrained"] = float(placebo.mean())
        details["pos_embed_moved"] = table_moved(model.pos_embed, untrained.pos_embed)
        details["decoder_pos_embed_moved"] = table_moved(
            model.decoder_pos_embed, untrained.decoder_pos_embed
        )
    init = model.arch.pos_embed_init
    learns = model.arch.learnable_pos_embed and init == "random"
    return QuestionResult(
        question="Q1",
        claim=Q1_CLAIM,
        manipulation=f"{'learnable' if model.arch.learnable_pos_embed else 'fixed'} "
        f"{init}-init table as trained"
        + (", minus the same contrast of its untrained start" if untrained is not None else ""),
        control="the same table, rows assigned to shuffled positions",
        treated=float(treated.mean()),
        control_value=float(shuffled.mean()),
        paired=[float(v) for v in paired],
        predicted="increase",
        margin=Q1_MARGIN,
        unit="position",
        # a fixed table cannot move and a sin-cos start is a coordinate table by construction
        kind="prediction" if learns else "instrument",
        details=details,
        placebo=None if placebo is None else [float(v) for v in placebo],
    )
