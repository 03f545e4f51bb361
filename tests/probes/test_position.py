"""Position probe (Cao Q1): coordinates read from tokens, embedding similarity vs distance."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from maelab import verdicts as vd
from maelab.data.base import ImageSet
from maelab.models import MaskedAutoencoder
from maelab.models.pos_embed import sincos_2d
from maelab.probes.inputs import grid_coords, grid_distances
from maelab.probes.position import (
    coordinate_r2,
    heldout_position_r2,
    position_locality,
    position_probe,
    q1_experiment,
    similarity_by_distance,
)
from maelab.probes.questions import question_row


def test_tokens_that_are_coordinates_give_r2_one() -> None:
    grid, n = 4, 20
    xy = grid_coords(grid).float()  # (L, 2)
    noise = torch.randn(n, grid * grid, 6, generator=torch.Generator().manual_seed(0))
    tokens = torch.cat([xy.expand(n, -1, -1), noise], dim=-1)  # (N, L, 8)
    assert coordinate_r2(tokens, grid) == pytest.approx(1.0, abs=1e-3)


def test_tokens_without_position_give_r2_near_zero() -> None:
    tokens = torch.randn(40, 16, 8, generator=torch.Generator().manual_seed(0))
    assert coordinate_r2(tokens, 4) < 0.05


def test_similarity_by_distance_by_hand() -> None:
    # 2x2 grid, embeddings chosen so that neighbours have similarity 0.5, diagonals 0
    pos = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.75**0.5, 0.0], [0.5, -(0.75**0.5), 0.0],
                        [0.0, 0.0, 1.0]])  # fmt: skip
    distances, sims, rho = similarity_by_distance(pos, 2)
    assert distances == pytest.approx([1.0, 2**0.5])
    # distance-1 pairs: (0,1)=.5, (0,2)=.5, (1,3)=0, (2,3)=0; diagonal pairs: (0,3)=0, (1,2)=-.5
    assert sims == pytest.approx([0.25, -0.25])
    assert rho < 0


def test_sincos_table_similarity_falls_with_distance() -> None:
    distances, sims, rho = similarity_by_distance(sincos_2d(32, 4, cls_token=False), 4)
    assert distances[0] == 1.0 and sims[0] > sims[-1]
    assert rho < -0.5


def test_position_probe_on_a_model(
    images: ImageSet, make_model: Callable[..., MaskedAutoencoder]
) -> None:
    res = position_probe(make_model(), images, max_images=32)
    assert res.layers == ["embed", "block 0", "block 1"]
    assert len(res.coordinate_r2) == 3 and all(r <= 1.0 for r in res.coordinate_r2)
    assert res.learnable_pos_embed is False and res.num_images == 32
    # without image content the embedding is the sin-cos table alone: 16 distinct points in
    # 32 dimensions, from which a linear map reads (row, col) exactly
    blind = make_model()
    torch.nn.init.zeros_(blind.patch_embed.proj.weight)
    torch.nn.init.zeros_(blind.patch_embed.proj.bias)
    assert position_probe(blind, images, max_images=32).coordinate_r2[0] > 0.99
    dec = position_probe(make_model(), images, max_images=8, pos_embed="decoder")
    assert len(dec.similarity) == len(dec.distances)
    with pytest.raises(ValueError):
        position_probe(make_model(), images, pos_embed="nope")


# ---------------------------------------------------------------- Q1 experiment
def _kernel_table(grid: int, width: float = 1.5) -> torch.Tensor:
    """Embeddings whose cosine similarities are exactly exp(-d^2 / width^2): the symmetric
    square root of that kernel matrix (strictly falling with grid distance)."""
    k = torch.exp(-(grid_distances(grid) ** 2) / width**2)
    vals, vecs = torch.linalg.eigh(k)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T  # (L, L), E E^T = K


def test_locality_is_one_for_a_kernel_table_and_near_zero_for_noise() -> None:
    assert position_locality(_kernel_table(4), 4) == pytest.approx(np.ones(16), abs=1e-9)
    noise = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    assert abs(position_locality(noise, 8).mean()) < 0.05
    with pytest.raises(ValueError):
        position_locality(noise, 4)


def test_heldout_positions_read_coordinates_not_a_lookup() -> None:
    grid, n = 4, 12
    g = torch.Generator().manual_seed(0)
    coords = torch.cat([grid_coords(grid).float(), torch.zeros(16, 14)], dim=1)  # (L, 16)
    tokens = coords + 0.01 * torch.randn(n, 16, 16, generator=g)
    assert heldout_position_r2(tokens, grid).min() > 0.99
    # a one-hot lookup separates the 16 positions perfectly in-sample, yet holds no coordinate
    # that extends to a position the ridge never saw
    lookup = torch.eye(16).expand(n, -1, -1) + 0.01 * torch.randn(n, 16, 16, generator=g)
    assert coordinate_r2(lookup, grid) > 0.99
    assert heldout_position_r2(lookup, grid).max() < 0.1


def _decide(result) -> str:
    return vd.decide_table([question_row(result)])[0].outcome


def test_q1_untrained_random_table_fails_and_a_coordinate_table_passes(
    images: ImageSet, make_model: Callable[..., MaskedAutoencoder]
) -> None:
    arch = dict(patch_size=2, embed_dim=64, pos_embed_init="random", learnable_pos_embed=True)
    untrained = make_model(**arch)  # an 8x8 grid: 64 positions
    fails = q1_experiment(untrained, images, max_images=16)
    assert fails.kind == "prediction" and fails.unit == "position" and len(fails.paired) == 64
    assert _decide(fails) == "inconclusive"  # disagrees by its interval, but no positive control
    # the same model with a table that is a coordinate system: the outcome flips
    placed = make_model(**arch)
    with torch.no_grad():
        placed.pos_embed[0, 1:] = _kernel_table(8)
    passes = q1_experiment(placed, images, untrained=untrained, max_images=16)
    assert _decide(passes) == "agrees" and passes.treated > 0.9
    assert {"heldout_r2_embed_model", "heldout_r2_last_untrained"} <= passes.details.keys()
    # a sin-cos table passes by construction: an instrument row, not a prediction
    sincos = q1_experiment(make_model(patch_size=2), images, max_images=16)
    assert sincos.kind == "instrument" and _decide(sincos) == "agrees"
