"""MaskedAutoencoder against values computed another way (by hand and with numpy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from maelab.masking import num_keep
from maelab.models import MAEArch, MaskedAutoencoder
from maelab.models.mae import init_generator
from maelab.models.pos_embed import sincos_2d

TINY = dict(
    img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2,
    decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
)  # fmt: skip


def tiny(seed: int = 0, **overrides: object) -> MaskedAutoencoder:
    torch.manual_seed(seed)
    return MaskedAutoencoder(**{**TINY, **overrides}).eval()


def patchify_by_hand(imgs: np.ndarray, p: int) -> np.ndarray:
    """Loops, not reshapes: raster patch order, (row, col, channel) inside a patch."""
    n, c, h, w = imgs.shape
    out = np.zeros((n, (h // p) * (w // p), p * p * c), dtype=imgs.dtype)
    for b in range(n):
        for i in range(h // p):
            for j in range(w // p):
                k = 0
                for r in range(p):
                    for s in range(p):
                        for ch in range(c):
                            out[b, i * (w // p) + j, k] = imgs[b, ch, i * p + r, j * p + s]
                            k += 1
    return out


# ---------------------------------------------------------------- patches
@pytest.mark.parametrize("in_chans", [1, 3])
def test_patchify_unpatchify_round_trip(in_chans: int) -> None:
    model = tiny(in_chans=in_chans)
    imgs = torch.randn(2, in_chans, 16, 16)
    patches = model.patchify(imgs)
    assert patches.shape == (2, 16, 4 * 4 * in_chans)
    assert torch.equal(model.unpatchify(patches), imgs)


@pytest.mark.parametrize("in_chans", [1, 3])
def test_patchify_order_by_hand(in_chans: int) -> None:
    model = tiny(in_chans=in_chans)
    imgs = torch.arange(2 * in_chans * 16 * 16, dtype=torch.float32).reshape(2, in_chans, 16, 16)
    expected = patchify_by_hand(imgs.numpy(), 4)
    np.testing.assert_array_equal(model.patchify(imgs).numpy(), expected)


def test_patchify_tiny_tensor_literal() -> None:
    """2x2 image, patch 1, 3 channels: each patch is the (R, G, B) of one pixel, raster order."""
    model = MaskedAutoencoder(
        img_size=4,
        patch_size=2,
        embed_dim=8,
        depth=1,
        num_heads=2,
        decoder_embed_dim=8,
        decoder_depth=1,
        decoder_num_heads=2,
    )
    img = torch.arange(48, dtype=torch.float32).reshape(1, 3, 4, 4)  # value = 16c + 4y + x
    first = model.patchify(img)[0, 0].tolist()
    # patch (0, 0): pixels (0,0) (0,1) (1,0) (1,1), channels inside
    assert first == [0, 16, 32, 1, 17, 33, 4, 20, 36, 5, 21, 37]
    second = model.patchify(img)[0, 1].tolist()  # patch (0, 1) starts at x = 2
    assert second[:3] == [2, 18, 34]


# ---------------------------------------------------------------- masking
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0])
def test_removed_count_is_exact(ratio: float) -> None:
    model = tiny()
    imgs = torch.randn(3, 3, 16, 16)
    latent, mask, ids_restore = model.forward_encoder(imgs, ratio)
    num_patches = 16
    removed = num_patches - int(num_patches * (1 - ratio))
    assert mask.shape == (3, num_patches)
    assert mask.sum(dim=1).tolist() == [removed] * 3
    assert latent.shape == (3, 1 + num_patches - removed, 32)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


def test_mask_agrees_with_ids_restore_and_noise() -> None:
    model = tiny()
    noise = torch.rand(4, 16)
    x = torch.randn(4, 16, 32)
    x_masked, mask, ids_restore = model.random_masking(x, 0.75, noise)
    keep = num_keep(16, 0.75)
    # a patch is kept (0) exactly when its rank in the noise order is below len_keep
    assert torch.equal(mask, (ids_restore >= keep).float())
    ids_shuffle = noise.argsort(dim=1)
    assert torch.equal(ids_shuffle.gather(1, ids_restore), torch.arange(16).expand(4, 16))
    # kept tokens are the smallest-noise patches, in ascending noise order
    for b in range(4):
        kept = noise[b].topk(keep, largest=False).indices
        assert torch.equal(x_masked[b], x[b, kept])
        assert mask[b, kept].sum() == 0


def test_same_noise_same_mask_and_output() -> None:
    model = tiny()
    imgs = torch.randn(2, 3, 16, 16)
    noise = torch.rand(2, 16)
    a = model(imgs, 0.75, noise)
    b = model(imgs, 0.75, noise.clone())
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    c = model(imgs, 0.75, torch.rand(2, 16))
    assert not torch.equal(a[2], c[2])


# ---------------------------------------------------------------- loss
def reference_loss(
    imgs: np.ndarray, pred: np.ndarray, mask: np.ndarray, p: int, norm_pix: bool
) -> float:
    target = patchify_by_hand(imgs.astype(np.float64), p)
    if norm_pix:
        mean = target.mean(axis=-1, keepdims=True)
        var = target.var(axis=-1, ddof=1, keepdims=True)  # unbiased
        target = (target - mean) / np.sqrt(var + 1e-6)
    per_patch = ((pred.astype(np.float64) - target) ** 2).mean(axis=-1)  # (N, L)
    return float((per_patch * mask).sum() / mask.sum())


@pytest.mark.parametrize("norm_pix", [True, False])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_loss_is_masked_mean_by_hand(norm_pix: bool, in_chans: int) -> None:
    model = tiny(norm_pix_loss=norm_pix, in_chans=in_chans)
    imgs = torch.rand(3, in_chans, 16, 16)
    with torch.no_grad():
        loss, pred, mask = model(imgs, 0.6, torch.rand(3, 16))
    ref = reference_loss(imgs.numpy(), pred.numpy(), mask.numpy(), 4, norm_pix)
    assert loss.item() == pytest.approx(ref, rel=1e-5)


def test_loss_ignores_visible_patches() -> None:
    model = tiny(norm_pix_loss=False)
    imgs = torch.rand(2, 3, 16, 16)
    pred = torch.rand(2, 16, 48)
    mask = torch.zeros(2, 16)
    mask[:, :5] = 1
    spoiled = pred.clone()
    spoiled[:, 5:] += 100.0  # only visible patches change
    assert torch.equal(
        model.forward_loss(imgs, pred, mask), model.forward_loss(imgs, spoiled, mask)
    )


def test_target_of_constant_patch_is_finite() -> None:
    model = tiny(norm_pix_loss=True)
    t = model.target(torch.ones(1, 3, 16, 16))
    assert torch.isfinite(t).all() and t.abs().max() == 0


# ---------------------------------------------------------------- init
def test_layernorm_eps_everywhere() -> None:
    norms = [m for m in tiny().modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 * 2 + 1 + 2 * 1 + 1
    assert all(m.eps == 1e-6 for m in norms)


@pytest.mark.parametrize("learnable", [False, True])
def test_pos_embed_grad_flag(learnable: bool) -> None:
    model = tiny(learnable_pos_embed=learnable)
    assert model.pos_embed.requires_grad is learnable
    assert model.decoder_pos_embed.requires_grad is learnable
    # starts from the sin-cos table either way
    assert torch.equal(model.pos_embed[0], sincos_2d(32, 4, cls_token=True))
    assert torch.equal(model.decoder_pos_embed[0], sincos_2d(16, 4, cls_token=True))


def test_fixed_pos_embed_gets_no_gradient() -> None:
    model = tiny().train()
    model(torch.randn(2, 3, 16, 16))[0].backward()
    assert model.pos_embed.grad is None and model.decoder_pos_embed.grad is None
    assert model.cls_token.grad is not None and model.mask_token.grad is not None


def test_token_init_std() -> None:
    models = [tiny(seed, embed_dim=128, decoder_embed_dim=128, depth=1) for seed in range(16)]
    for name in ("cls_token", "mask_token"):
        values = torch.cat([getattr(m, name).flatten() for m in models])  # 2048 draws
        assert values.std().item() == pytest.approx(0.02, rel=0.08)
        assert abs(values.mean().item()) < 0.002


def test_linear_and_patch_projection_are_xavier_uniform() -> None:
    model = tiny()
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            bound = math.sqrt(6 / (m.in_features + m.out_features))
            assert m.weight.abs().max() <= bound, name
            assert m.weight.abs().max() > 0.9 * bound, name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
    w = model.patch_embed.proj.weight  # (D, C, p, p) treated as a Linear of fan_in C*p*p
    bound = math.sqrt(6 / (w[0].numel() + w.shape[0]))
    assert bound * 0.9 < w.abs().max() <= bound


# ---------------------------------------------------------------- encode
def test_encode_equals_unshuffled_forward_encoder_at_ratio_0() -> None:
    model = tiny()
    imgs = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        latent, mask, ids_restore = model.forward_encoder(imgs, 0.0, torch.rand(2, 16))
        tokens = model.encode(imgs)
    assert mask.sum() == 0
    patches = latent[:, 1:].gather(1, ids_restore.unsqueeze(-1).expand(-1, -1, 32))  # raster order
    torch.testing.assert_close(tokens[:, 1:], patches, atol=1e-5, rtol=0)
    torch.testing.assert_close(tokens[:, :1], latent[:, :1], atol=1e-5, rtol=0)


def test_encode_layer_returns_block_output_before_norm() -> None:
    model = tiny()
    imgs = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        last = model.encode(imgs, layer=1)
        torch.testing.assert_close(model.norm(last), model.encode(imgs))
        assert model.encode(imgs, layer=0).shape == (2, 17, 32)


# ---------------------------------------------------------------- shapes and config
@pytest.mark.parametrize("decoder_depth", [0, 1])
def test_forward_shapes(decoder_depth: int) -> None:
    model = tiny(decoder_depth=decoder_depth, in_chans=1)
    loss, pred, mask = model(torch.randn(2, 1, 16, 16), mask_ratio=0.75)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert pred.shape == (2, 16, 16) and mask.shape == (2, 16)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (dict(img_size=18), "not divisible by patch size"),
        (dict(num_heads=3), "heads do not divide"),
        (dict(decoder_num_heads=5), "heads do not divide"),
        (dict(embed_dim=34, num_heads=2), "multiple of 4"),
        (dict(in_chans=2), "1 or 3 channels"),
        (dict(depth=0), "depth"),
    ],
)
def test_arch_validation(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MAEArch(**{**TINY, **overrides}).validate()


def test_arch_grid() -> None:
    arch = MAEArch(img_size=224, patch_size=16)
    assert (arch.grid_size, arch.num_patches) == (14, 196)


# ---------------------------------------------------------------- seeded init (pairing)
def encoder_state(model: MaskedAutoencoder) -> dict[str, torch.Tensor]:
    decoder = ("decoder_", "mask_token")
    return {k: v for k, v in model.state_dict().items() if not k.startswith(decoder)}


def test_init_seed_pairs_encoders_across_decoder_depth() -> None:
    torch.manual_seed(1)
    shallow = MaskedAutoencoder(**{**TINY, "decoder_depth": 1}, init_seed=7)
    torch.manual_seed(2)  # the global stream plays no part
    deep = MaskedAutoencoder(**{**TINY, "decoder_depth": 2, "decoder_embed_dim": 32}, init_seed=7)
    a, b = encoder_state(shallow), encoder_state(deep)
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # without a seed the decoder's draws shift the encoder's: the failure the seed removes
    torch.manual_seed(3)
    x = MaskedAutoencoder(**{**TINY, "decoder_depth": 1})
    torch.manual_seed(3)
    y = MaskedAutoencoder(**{**TINY, "decoder_depth": 2})
    assert not torch.equal(
        encoder_state(x)["blocks.0.attn.qkv.weight"], y.blocks[0].attn.qkv.weight
    )


def test_init_seed_is_reproducible_and_seeds_differ() -> None:
    a, b, c = (MaskedAutoencoder(**TINY, init_seed=s) for s in (5, 5, 6))
    states = zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    )
    for (k, u), v, w in states:
        assert torch.equal(u, v), k
        if "pos_embed" not in k and u.std() > 0:  # fixed tables and constant inits match anyway
            assert not torch.equal(u, w), k
    # encoder and decoder streams differ from each other too
    assert not torch.equal(a.cls_token[0, 0, :16], a.mask_token[0, 0, :16])


def test_init_seed_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(11)
    before = torch.random.get_rng_state()
    MaskedAutoencoder(**TINY, init_seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_init_seed_none_keeps_the_global_rng_init() -> None:
    torch.manual_seed(4)
    a = MaskedAutoencoder(**TINY)
    after_a = torch.rand(3)
    torch.manual_seed(4)
    b = MaskedAutoencoder(**TINY, init_seed=None)
    for (k, u), v in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(u, v), k
    assert torch.equal(torch.rand(3), after_a)  # the stream advanced exactly as before


def test_seeded_init_distributions_are_the_official_ones() -> None:
    """Statistics over many seeds: xavier-uniform Linears and patch projection, N(0, 0.02)
    tokens, zero Linear biases, LayerNorm (1, 0), Conv2d-default patch bias, sin-cos tables."""
    arch = {**TINY, "embed_dim": 64, "decoder_embed_dim": 64, "num_heads": 2}
    models = [MaskedAutoencoder(**arch, init_seed=s) for s in range(8)]
    for name, m in models[0].named_modules():
        if isinstance(m, nn.Linear):
            bound = math.sqrt(6 / (m.in_features + m.out_features))
            w = torch.cat([dict(x.named_modules())[name].weight.flatten() for x in models])
            assert w.abs().max() <= bound and w.abs().max() > 0.98 * bound, name
            # U(-b, b): mean 0, std b / sqrt(3)
            assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05), name
            assert abs(w.mean().item()) < 0.05 * bound, name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
        elif isinstance(m, nn.LayerNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)), name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
    w = torch.cat([x.patch_embed.proj.weight.flatten() for x in models])  # fan_in C*p*p = 48
    bound = math.sqrt(6 / (48 + 64))
    assert 0.98 * bound < w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    bias = torch.cat([x.patch_embed.proj.bias for x in models])
    assert 0.9 / math.sqrt(48) < bias.abs().max() <= 1 / math.sqrt(48)
    for token in ("cls_token", "mask_token"):
        values = torch.cat([getattr(x, token).flatten() for x in models])  # 512 draws
        assert values.std().item() == pytest.approx(0.02, rel=0.1), token
        assert abs(values.mean().item()) < 0.003, token
    assert torch.equal(models[0].pos_embed[0], sincos_2d(64, 4, cls_token=True))
    assert torch.equal(models[0].decoder_pos_embed[0], sincos_2d(64, 4, cls_token=True))


def test_init_generator_is_stable() -> None:
    a = torch.rand(4, generator=init_generator(0, "encoder"))
    assert torch.equal(a, torch.rand(4, generator=init_generator(0, "encoder")))
    assert not torch.equal(a, torch.rand(4, generator=init_generator(0, "decoder")))
    assert not torch.equal(a, torch.rand(4, generator=init_generator(1, "encoder")))
