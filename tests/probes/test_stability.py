"""Stability probe (Cao Q3): identity blocks update nothing and keep CKA at 1."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from maelab.data.base import ImageSet
from maelab.models import MaskedAutoencoder
from maelab.probes.stability import block_halves, stability_of_blocks, stability_probe


def _zero(layer: nn.Linear) -> None:
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


def test_block_halves_reproduce_the_block(make_model: Callable[..., MaskedAutoencoder]) -> None:
    blk = make_model().blocks[0]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        _, out = block_halves(blk, x)
        torch.testing.assert_close(out, blk(x))


def test_identity_blocks(make_model: Callable[..., MaskedAutoencoder]) -> None:
    model = make_model()
    for blk in model.blocks:
        _zero(blk.attn.proj)
        _zero(blk.mlp.fc2)
    x = torch.randn(4, 17, 32)
    with torch.no_grad():
        stats = stability_of_blocks(list(model.blocks), x)
    assert stats["attn"] == [0.0, 0.0] and stats["mlp"] == [0.0, 0.0]
    assert stats["cka"] == pytest.approx([1.0, 1.0])


def test_attention_half_only(make_model: Callable[..., MaskedAutoencoder]) -> None:
    """Zeroed attention output: the attention half is 0, the MLP half is the block's update."""
    model = make_model()
    blk = model.blocks[0]
    _zero(blk.attn.proj)
    x = torch.randn(3, 17, 32)
    with torch.no_grad():
        stats = stability_of_blocks([blk], x)
        expected = ((blk(x) - x).norm(dim=-1) / x.norm(dim=-1)).mean().item()
    assert stats["attn"] == [0.0]
    assert stats["mlp"][0] == pytest.approx(expected, rel=1e-5)
    assert stats["block"][0] == pytest.approx(expected, rel=1e-5)


def test_stability_probe_encoder_and_decoder(
    images: ImageSet, make_model: Callable[..., MaskedAutoencoder]
) -> None:
    model = make_model()
    enc = stability_probe(model, images, max_images=16)
    assert enc.part == "encoder" and len(enc.attn_update) == len(enc.adjacent_cka) == 2
    assert all(0 < c <= 1 + 1e-9 for c in enc.adjacent_cka)
    dec = stability_probe(model, images, part="decoder", max_images=16)
    assert len(dec.mlp_update) == model.arch.decoder_depth
    with pytest.raises(ValueError):
        stability_probe(model, images, part="head")
