"""Hidden states and explicit attention maps of a MaskedAutoencoder, for the probes.

timm's attention runs fused SDPA and never forms the attention matrix; `attention_probs`
recomputes ``softmax(q k^T * scale)`` from the block's own ``qkv`` projection.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Attention, Block

from maelab.evaluation.features import encoder_tokens
from maelab.masking import Mask
from maelab.models.mae import MaskedAutoencoder


def encoder_input(model: MaskedAutoencoder, imgs: torch.Tensor) -> torch.Tensor:
    """The encoder's first residual stream on all patches (no masking): (N, 1 + L, D), cls first."""
    x = model.patch_embed(imgs) + model.pos_embed[:, 1:, :]  # (N, L, D)
    cls = (model.cls_token + model.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
    return torch.cat([cls, x], dim=1)


def encoder_states(model: MaskedAutoencoder, imgs: torch.Tensor) -> list[torch.Tensor]:
    """Residual stream of the encoder on all patches (no masking): ``depth + 1`` tensors
    (N, 1 + L, D), cls first; entry 0 is the embedding (patches + positions), entry ``l + 1``
    the output of block ``l`` before the final norm (as ``model.encode(imgs, layer=l)``)."""
    x = encoder_input(model, imgs)
    states = [x]
    for blk in model.blocks:
        x = blk(x)
        states.append(x)
    return states


def decoder_input(
    model: MaskedAutoencoder, latent: torch.Tensor, ids_restore: torch.Tensor
) -> torch.Tensor:
    """The decoder's first residual stream (N, 1 + L, Dd): embedded visible tokens and mask
    tokens unshuffled to raster order, plus decoder positions (`MaskedAutoencoder.decoder_input`;
    with a code, every slot reads the embedded code)."""
    return model.decoder_input(latent, ids_restore)


def attention_probs(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """Attention probabilities (N, heads, T, T) of a timm ``Attention`` on its input ``x``
    (N, T, D), i.e. what it sees after the block's ``norm1``. Rows sum to 1."""
    n, t, _ = x.shape
    head_dim = attn.qkv.out_features // (3 * attn.num_heads)
    qkv = attn.qkv(x).reshape(n, t, 3, attn.num_heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)  # (N, H, T, hd)
    q, k = attn.q_norm(q), attn.k_norm(k)
    return ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)


def block_attention(blk: Block, x: torch.Tensor) -> torch.Tensor:
    """Attention probabilities of a transformer block on its residual input ``x``."""
    return attention_probs(blk.attn, blk.norm1(x))


def decoder_attention(
    model: MaskedAutoencoder, imgs: torch.Tensor, mask: Mask
) -> list[torch.Tensor]:
    """Attention maps of every decoder block under `mask`, (N, heads, 1 + L, 1 + L) each (cls
    first, then patches in raster order)."""
    mask = mask.to(imgs.device)
    x = decoder_input(model, encoder_tokens(model, imgs, mask), mask.ids_restore)
    maps = []
    for blk in model.decoder_blocks:
        maps.append(block_attention(blk, x))
        x = blk(x)
    return maps


def patch_errors(
    model: MaskedAutoencoder, imgs: torch.Tensor, mask: Mask
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch reconstruction error (N, L), the model's loss before averaging, and the
    official float mask (N, L), 1 = removed."""
    _, pred, removed = model(imgs, mask=mask)
    err = (pred.float() - model.target(imgs).float()).pow(2).mean(dim=-1)  # (N, L)
    return err, removed
