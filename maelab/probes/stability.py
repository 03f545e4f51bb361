"""Cao Q3: representations stay stable from layer to layer.

Scaled dot-product attention (rows of the attention map sum to 1) and skip connections keep each
block's update small relative to the residual stream. Per block we measure the relative update
``||x_out - x_in|| / ||x_in||`` of the attention half and of the MLP half separately, and of the
whole block, averaged over tokens; and the linear CKA between adjacent layers' tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from timm.models.vision_transformer import Block

from maelab.config import MaskConfig
from maelab.data.base import ImageSet
from maelab.masking import MaskGeometry, mask_noise_for
from maelab.metrics import linear_cka, relative_update
from maelab.models.mae import MaskedAutoencoder
from maelab.probes.activations import decoder_input, encoder_input
from maelab.probes.inputs import eval_mode, model_device, normalised, take


@dataclass
class StabilityResult:
    part: str  # "encoder" or "decoder"
    attn_update: list[
        float
    ]  # per block: ||x_mid - x_in|| / ||x_in||, x_mid = x_in + attention half
    mlp_update: list[float]  # per block: ||x_out - x_mid|| / ||x_mid||
    block_update: list[float]  # per block: ||x_out - x_in|| / ||x_in||
    adjacent_cka: list[float]  # per block: linear CKA(x_in tokens, x_out tokens)
    num_images: int


def block_halves(blk: Block, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The residual stream after the attention half and after the MLP half of a timm block:
    ``x + drop_path1(ls1(attn(norm1(x))))``, then ``+ drop_path2(ls2(mlp(norm2(.))))``."""
    mid = x + blk.drop_path1(blk.ls1(blk.attn(blk.norm1(x))))
    return mid, mid + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(mid))))


def stability_of_blocks(
    blocks: Sequence[Block], x: torch.Tensor, max_cka_tokens: int = 8192
) -> dict[str, list[float]]:
    """Relative updates and adjacent-layer CKA for a stack of blocks on input ``x`` (N, T, D).

    CKA treats every token as a sample (at most ``max_cka_tokens`` of them, evenly spaced).
    """
    out: dict[str, list[float]] = {"attn": [], "mlp": [], "block": [], "cka": []}
    for blk in blocks:
        mid, y = block_halves(blk, x)
        out["attn"].append(relative_update(x, mid))
        out["mlp"].append(relative_update(mid, y))
        out["block"].append(relative_update(x, y))
        a, b = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
        step = max(1, a.shape[0] // max_cka_tokens)
        out["cka"].append(linear_cka(a[::step], b[::step]))
        x = y
    return out


def stability_probe(
    model: MaskedAutoencoder,
    images: ImageSet,
    part: str = "encoder",
    max_images: int | None = 256,
    mask_ratio: float = 0.75,
    seed: int = 0,
) -> StabilityResult:
    """Per-block relative updates and adjacent CKA of the encoder (all patches, no masking) or
    of the decoder (on a fixed random mask of ``mask_ratio``; every token incl. cls counts)."""
    if part not in ("encoder", "decoder"):
        raise ValueError(f"part must be 'encoder' or 'decoder', got '{part}'")
    subset = take(images, max_images)
    with eval_mode(model):
        imgs = normalised(subset, model_device(model))
        if part == "encoder":
            x, blocks = encoder_input(model, imgs), model.blocks
        else:
            g = torch.Generator().manual_seed(seed)
            geom = MaskGeometry(model.arch.grid_size, model.patch_size)
            noise = mask_noise_for(MaskConfig(ratio=mask_ratio), imgs.shape[0], geom, g).to(
                imgs.device
            )
            latent, _, ids_restore = model.forward_encoder(imgs, mask_ratio, noise)
            x, blocks = decoder_input(model, latent, ids_restore), model.decoder_blocks
        stats = stability_of_blocks(list(blocks), x)
    return StabilityResult(
        part=part,
        attn_update=stats["attn"],
        mlp_update=stats["mlp"],
        block_update=stats["block"],
        adjacent_cka=stats["cka"],
        num_images=len(subset),
    )
