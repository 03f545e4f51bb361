"""Block ablations (Cao Q3) and the positional tables' init: by hand, and the default untouched."""

from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import Block

from maelab.config import load_config
from maelab.engine.pretrain import pretrain
from maelab.models import MAEArch, MaskedAutoencoder
from maelab.models.ablation import (
    ABLATIONS,
    AblatedBlock,
    ablated_attention,
    attention_weights,
    block_halves,
)
from maelab.models.checkpoints import load_pretrained
from maelab.models.interop import to_timm_vit
from maelab.models.pos_embed import sincos_2d

TINY = dict(
    img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2,
    decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
)  # fmt: skip


def _qkv(blk: Block, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v (N, H, T, hd) of a block's attention on x, by hand from the qkv weight."""
    h = blk.attn.num_heads
    y = torch.nn.functional.linear(blk.norm1(x), blk.attn.qkv.weight, blk.attn.qkv.bias)
    n, t, _ = y.shape
    q, k, v = y.reshape(n, t, 3, h, -1).permute(2, 0, 3, 1, 4)
    return q, k, v


def _attn_out(blk: Block, weights: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    n, _, t, _ = v.shape
    return blk.attn.proj((weights @ v).transpose(1, 2).reshape(n, t, -1))


def test_default_blocks_are_timm_blocks_and_bit_identical() -> None:
    plain = MaskedAutoencoder(**TINY, init_seed=3)
    named = MaskedAutoencoder(**TINY, ablation="none", init_seed=3)
    assert all(type(b) is Block for b in named.blocks)
    x = torch.randn(2, 3, 16, 16)
    noise = torch.rand(2, 16)
    with torch.no_grad():
        assert torch.equal(plain(x, 0.5, noise)[1], named(x, 0.5, noise)[1])


def test_ablated_models_share_names_and_init_with_the_plain_one() -> None:
    plain = MaskedAutoencoder(**TINY, init_seed=3).state_dict()
    for ablation in ABLATIONS[1:]:
        model = MaskedAutoencoder(**TINY, ablation=ablation, init_seed=3)
        assert all(isinstance(b, AblatedBlock) for b in model.blocks)
        assert all(type(b) is Block for b in model.decoder_blocks)  # the decoder is untouched
        state = model.state_dict()
        assert state.keys() == plain.keys()
        assert all(torch.equal(state[k], plain[k]) for k in plain)


def test_unablated_attention_path_matches_timm() -> None:
    blk = MaskedAutoencoder(**TINY, init_seed=0).blocks[0]
    x = blk.norm1(torch.randn(2, 17, 32))
    with torch.no_grad():
        torch.testing.assert_close(ablated_attention(blk.attn, x, "none"), blk.attn(x))
        assert attention_weights(blk.attn, x).sum(-1).allclose(torch.ones(2, 2, 17))


def test_no_skip_block_by_hand() -> None:
    blk = MaskedAutoencoder(**TINY, ablation="no_skip", init_seed=0).blocks[0]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        mid = blk.attn(blk.norm1(x))  # the plain attention, no residual
        torch.testing.assert_close(blk(x), blk.mlp(blk.norm2(mid)))
        torch.testing.assert_close(block_halves(blk, x)[0], mid)


def test_no_scale_block_by_hand() -> None:
    blk = MaskedAutoencoder(**TINY, ablation="no_scale", init_seed=0).blocks[0]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        q, k, v = _qkv(blk, x)
        weights = (q @ k.transpose(-2, -1)).softmax(-1)  # no 1/sqrt(16)
        mid = x + _attn_out(blk, weights, v)
        torch.testing.assert_close(blk(x), mid + blk.mlp(blk.norm2(mid)))


def test_no_softmax_block_by_hand() -> None:
    blk = MaskedAutoencoder(**TINY, ablation="no_softmax", init_seed=0).blocks[0]
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        q, k, v = _qkv(blk, x)
        weights = (q @ k.transpose(-2, -1) / 4.0).exp() / 17  # head_dim 16: scale 1/4
        mid = x + _attn_out(blk, weights, v)
        torch.testing.assert_close(blk(x), mid + blk.mlp(blk.norm2(mid)))
        row_sums = attention_weights(blk.attn, blk.norm1(x), "no_softmax").sum(-1)
        assert not row_sums.allclose(torch.ones_like(row_sums))


def test_unknown_options_refused() -> None:
    with pytest.raises(ValueError, match="no_skip"):
        MAEArch(**TINY, ablation="no_norm").validate()
    with pytest.raises(ValueError, match="sincos"):
        MAEArch(**TINY, pos_embed_init="learned").validate()


def test_random_pos_embed_init() -> None:
    sincos = MaskedAutoencoder(**TINY, learnable_pos_embed=True, init_seed=5)
    model = MaskedAutoencoder(
        **TINY, learnable_pos_embed=True, pos_embed_init="random", init_seed=5
    )
    for table in (model.pos_embed, model.decoder_pos_embed):
        assert table.requires_grad and table.std().item() == pytest.approx(0.02, rel=0.15)
    assert not torch.equal(model.pos_embed[0], sincos_2d(32, 4, cls_token=True))
    # drawn after every other weight: the rest equals the sin-cos model of the same seed
    a, b = sincos.state_dict(), model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if "pos_embed" not in k)
    again = MaskedAutoencoder(**TINY, pos_embed_init="random", init_seed=5)
    assert torch.equal(again.pos_embed, model.pos_embed)
    torch.manual_seed(0)
    unseeded = MaskedAutoencoder(**TINY, pos_embed_init="random")
    assert unseeded.pos_embed.std().item() == pytest.approx(0.02, rel=0.15)


def test_options_survive_a_checkpoint_round_trip(tmp_path) -> None:
    cfg = load_config(
        ["maelab/configs/quickstart.yaml"],
        [
            f"run_dir={tmp_path}",
            "data.num_train=128",
            "data.num_test=32",
            "data.num_workers=0",
            "train.batch_size=64",
            "train.epochs=1",
            "model.learnable_pos_embed=true",
            "model.pos_embed_init=random",
            "model.ablation=no_softmax",
        ],
    )
    trained = pretrain(cfg, quiet=True).model
    model, loaded_cfg = load_pretrained(tmp_path / "checkpoints" / "last.pt")
    assert model.arch.pos_embed_init == "random" and model.arch.ablation == "no_softmax"
    assert loaded_cfg.model.pos_embed_init == "random"
    assert all(isinstance(b, AblatedBlock) for b in model.blocks)
    trained_state = trained.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained_state[k].cpu()), k
    # the learnable table moved away from its random start
    start = MaskedAutoencoder(model.arch, init_seed=cfg.train.seed)
    assert not torch.equal(start.pos_embed, model.pos_embed)


def test_ablated_encoders_do_not_leave_maelab() -> None:
    with pytest.raises(ValueError, match="no_scale"):
        to_timm_vit(MaskedAutoencoder(**TINY, ablation="no_scale", init_seed=0))
    assert to_timm_vit(MaskedAutoencoder(**TINY, init_seed=0)) is not None
