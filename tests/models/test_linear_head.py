"""Decoder depth 0: an affine head that mixes all tokens linearly (Cao Q4's linear decoder)."""

import torch

from maelab.models.mae import MaskedAutoencoder

ARCH = dict(img_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=2, num_heads=2,
            decoder_embed_dim=16, decoder_depth=0, decoder_num_heads=2)  # fmt: skip


def test_depth_zero_is_affine_in_the_encoder_output():
    model = MaskedAutoencoder(init_seed=0, **ARCH).eval()
    assert len(model.decoder_blocks) == 0 and model.decoder_mix is not None
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in [model.decoder_norm])
    ids = torch.argsort(torch.rand(2, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    a, b = torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    f = lambda x: model.forward_decoder(x, ids)  # noqa: E731
    mix = f(0.3 * a + 0.7 * b)
    assert torch.allclose(mix, 0.3 * f(a) + 0.7 * f(b), atol=1e-5)


def test_masked_patches_are_predicted_from_visible_ones():
    """Unlike a per-token head, every masked prediction depends on the visible tokens, so the
    encoder gets a gradient from the loss on masked patches."""
    model = MaskedAutoencoder(init_seed=0, **ARCH)
    imgs = torch.randn(2, 3, 16, 16)
    loss, _, _ = model(imgs, mask_ratio=0.75)
    loss.backward()
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.decoder_mix.weight.grad.abs().sum() > 0


def test_seeded_encoder_does_not_depend_on_the_decoder():
    deep = MaskedAutoencoder(init_seed=3, **{**ARCH, "decoder_depth": 2})
    linear = MaskedAutoencoder(init_seed=3, **ARCH)
    ours = linear.state_dict()
    encoder = ("blocks.", "patch_embed.", "cls_token", "pos_embed", "norm.")
    for k, v in deep.state_dict().items():
        if k.startswith(encoder):
            assert torch.equal(v, ours[k]), k
    again = MaskedAutoencoder(init_seed=3, **ARCH)
    assert torch.equal(again.decoder_mix.weight, linear.decoder_mix.weight)
