"""Interpolation probe (Cao Q5): hand-made local and uniform attention maps, the knock-out."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from maelab.data.base import ImageSet
from maelab.masking import num_keep
from maelab.models import MaskedAutoencoder
from maelab.probes.inputs import grid_distances
from maelab.probes.interpolation import (
    attention_locality,
    decoder_attention_probe,
    interpolation_probe,
    knockout_noise,
    knockout_probe,
    neighbour_mask,
)

GRID = 4
L = GRID * GRID


def test_neighbour_counts() -> None:
    counts = neighbour_mask(GRID).sum(-1)
    assert counts[0] == 3 and counts[1] == 5 and counts[5] == 8  # corner, edge, interior
    assert not neighbour_mask(GRID).diagonal().any()


def test_purely_local_attention() -> None:
    near = neighbour_mask(GRID).double()
    local = near / near.sum(-1, keepdim=True)  # each query spreads over its 8-neighbours
    attn = local.expand(2, 3, L, L)
    queries = torch.ones(2, L)
    out = attention_locality(attn, queries, GRID)
    assert float(out["near"]) == pytest.approx(1.0)
    expected = ((local * grid_distances(GRID)).sum(-1)).mean()
    assert float(out["distance"]) == pytest.approx(float(expected))
    assert float(out["uniform_near"]) == pytest.approx(float(near.sum() / L / L))


def test_uniform_attention_matches_the_uniform_reference() -> None:
    attn = torch.full((2, 2, L + 1, L + 1), 1.0 / (L + 1))  # with a cls token
    queries = (torch.arange(L) % 3 == 0).float().expand(2, L)
    visible = (torch.arange(L) < 4).float().expand(2, L)
    out = attention_locality(attn, queries, GRID, visible=visible)
    assert float(out["near"]) == pytest.approx(float(out["uniform_near"]))
    assert float(out["distance"]) == pytest.approx(float(out["uniform_distance"]))
    assert float(out["visible"]) == pytest.approx(4 / L)
    assert float(out["uniform_visible"]) == pytest.approx(4 / L)
    assert float(out["cls"]) == pytest.approx(1 / (L + 1))
    assert out["per_query"].shape == (2, 2 * int(queries[0].sum()))
    # only selected queries count: query 0 (a corner) has 3 neighbours of 16
    q0 = torch.zeros(2, L)
    q0[:, 0] = 1
    assert float(attention_locality(attn, q0, GRID)["near"]) == pytest.approx(3 / L)


def test_knockout_noise_removes_nearest_and_farthest_visible() -> None:
    ratio = 0.5
    noise = torch.rand(1, L, generator=torch.Generator().manual_seed(0))
    keep = num_keep(L, ratio)
    visible = set(noise.argsort(dim=1)[0, :keep].tolist())
    target = torch.tensor([next(i for i in range(L) if i not in visible)])
    near, far, d_near, d_far = knockout_noise(noise, target, 2, GRID, ratio)
    dist = grid_distances(GRID)[target[0]]
    by_distance = sorted(visible, key=lambda i: float(dist[i]))
    for variant, expect in ((near, by_distance[:2]), (far, by_distance[-2:])):
        kept = set(variant.argsort(dim=1)[0, : keep - 2].tolist())
        assert kept == visible - set(expect)
    assert float(d_near) < float(d_far)
    with pytest.raises(ValueError):
        knockout_noise(noise, torch.tensor([by_distance[0]]), 2, GRID, ratio)  # a visible target


def test_probes_on_a_model(images: ImageSet, make_model: Callable[..., MaskedAutoencoder]) -> None:
    model = make_model()
    att = decoder_attention_probe(model, images, max_images=8)
    assert len(att.layer_distance) == model.arch.decoder_depth
    assert 0 <= att.near_share <= 1 and 0 < att.uniform_near_share < 1
    assert att.mean_distance > 0 and len(att.query_distances) == 8 * 2 * 2 * 12
    assert len(att.query_uniform_distances) == len(att.query_distances)
    ko = knockout_probe(model, images, max_images=8, targets_per_image=2)
    assert ko.num_knocked == 4 and ko.num_targets == 16
    assert ko.near_distance < ko.far_distance
    assert ko.near_error == pytest.approx(ko.base_error + ko.near_increase)
    assert ko.near_minus_far == pytest.approx(ko.near_increase - ko.far_increase)
    res = interpolation_probe(model, images, max_images=4)
    assert res.knockout.num_targets == 16  # 4 targets per image by default


def test_model_without_decoder_blocks(
    images: ImageSet, make_model: Callable[..., MaskedAutoencoder]
) -> None:
    att = decoder_attention_probe(make_model(decoder_depth=0), images, max_images=4)
    assert math.isnan(att.mean_distance) and att.layer_distance == []
