"""Position probe (Cao Q1): coordinates read from tokens, embedding similarity vs distance."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from maelab.data.base import ImageSet
from maelab.models import MaskedAutoencoder
from maelab.models.pos_embed import sincos_2d
from maelab.probes.inputs import grid_coords
from maelab.probes.position import coordinate_r2, position_probe, similarity_by_distance


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
