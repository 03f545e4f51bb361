"""Matmul FLOPs of an MAE training step, counted analytically from the architecture."""

from __future__ import annotations

from maelab.masking import num_keep
from maelab.models import MAEArch


def block_flops(tokens: int, width: int, mlp_ratio: float) -> int:
    """Matmul FLOPs of one ViT block's forward on `tokens` tokens (per image)."""
    hidden = int(width * mlp_ratio)
    linear = (
        2 * tokens * (3 * width * width + width * width + 2 * width * hidden)
    )  # qkv, proj, fc1, fc2
    attention = 2 * 2 * tokens * tokens * width  # q k^T and attn v over all heads
    return linear + attention


def train_flops(arch: MAEArch, batch: int, mask_ratio: float = 0.75) -> int:
    """Matmul FLOPs of one training step: 3x the forward (the backward costs 2x the forward).

    Encoder on the visible tokens + cls, decoder on all tokens + cls.
    """
    n = arch.num_patches
    visible = num_keep(n, mask_ratio) + 1  # + cls
    pix = arch.patch_size**2 * arch.in_chans
    d, dd = arch.embed_dim, arch.decoder_embed_dim
    fwd = 2 * n * pix * d  # patch embedding of every patch
    fwd += arch.depth * block_flops(visible, d, arch.mlp_ratio)
    fwd += 2 * visible * d * dd  # decoder_embed
    fwd += arch.decoder_depth * block_flops(n + 1, dd, arch.mlp_ratio)
    fwd += 2 * (n + 1) * dd * pix  # decoder_pred
    return 3 * batch * fwd
