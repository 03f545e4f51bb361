"""Hidden states and explicit attention maps against the model's own forward passes."""

from __future__ import annotations

from collections.abc import Callable

import torch

from maelab.masking import mask_from_noise
from maelab.models import MaskedAutoencoder
from maelab.probes.activations import (
    attention_probs,
    decoder_attention,
    decoder_input,
    encoder_states,
    patch_errors,
)


def test_encoder_states_match_encode(make_model: Callable[..., MaskedAutoencoder]) -> None:
    model = make_model()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        states = encoder_states(model, x)
        assert len(states) == model.arch.depth + 1
        for layer in range(model.arch.depth):
            torch.testing.assert_close(states[layer + 1], model.encode(x, layer=layer))


def test_decoder_input_reproduces_forward_decoder(
    make_model: Callable[..., MaskedAutoencoder],
) -> None:
    model = make_model()
    x = torch.randn(3, 3, 16, 16)
    noise = torch.rand(3, 16)
    with torch.no_grad():
        latent, _, ids_restore = model.forward_encoder(x, 0.75, noise)
        h = decoder_input(model, latent, ids_restore)
        for blk in model.decoder_blocks:
            h = blk(h)
        ours = model.decoder_pred(model.decoder_norm(h))[:, 1:]
        torch.testing.assert_close(ours, model.forward_decoder(latent, ids_restore))


def test_attention_probs_reproduce_fused_attention(
    make_model: Callable[..., MaskedAutoencoder],
) -> None:
    model = make_model()
    blk = model.blocks[0]
    x = blk.norm1(torch.randn(2, 17, 32))
    with torch.no_grad():
        probs = attention_probs(blk.attn, x)  # (N, H, T, T)
        torch.testing.assert_close(probs.sum(-1), torch.ones(2, 2, 17))
        attn = blk.attn
        v = attn.qkv(x).reshape(2, 17, 3, 2, 16).permute(2, 0, 3, 1, 4)[2]
        out = (probs @ v).transpose(1, 2).reshape(2, 17, 32)
        torch.testing.assert_close(attn.proj(out), attn(x), atol=1e-5, rtol=1e-5)


def test_decoder_attention_shapes_and_patch_errors(
    make_model: Callable[..., MaskedAutoencoder],
) -> None:
    model = make_model()
    x = torch.randn(2, 3, 16, 16)
    noise = torch.rand(2, 16)
    with torch.no_grad():
        maps = decoder_attention(model, x, mask_from_noise(noise, 0.75))
        assert len(maps) == 2 and maps[0].shape == (2, 2, 17, 17)
        err, mask = patch_errors(model, x, mask_from_noise(noise, 0.75))
        loss, _, removed = model(x, 0.75, noise)
    assert torch.equal(mask, removed)
    torch.testing.assert_close((err * mask).sum() / mask.sum(), loss)
