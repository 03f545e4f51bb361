"""The MAEArch of an official MAE checkpoint, read from its tensor shapes.

Released files carry no architecture: `mae_pretrain_vit_*.pth` holds the encoder only,
`mae_visualize_vit_*.pth` adds the decoder. Shapes give widths, depths, patch and image size;
heads follow the ViT rule of 64 channels per head.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from maelab.models.mae import MAEArch

HEAD_DIM = 64  # every released ViT (and timm's ViT presets) uses 64 channels per head
OFFICIAL_KEYS = ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight")


@dataclass(frozen=True)
class OfficialArch:
    """An inferred architecture and whether the checkpoint holds a decoder."""

    arch: MAEArch
    has_decoder: bool

    def describe(self) -> str:
        """One line: the inferred sizes and which parts the checkpoint lacks."""
        a = self.arch
        sizes = (
            f"ViT {a.embed_dim} wide x {a.depth} deep, {_count(a.num_heads, 'head')}, "
            f"patch {a.patch_size}, {a.img_size} px, {_count(a.in_chans, 'channel')}"
        )
        if self.has_decoder:
            return f"official MAE checkpoint with decoder: {sizes}"
        return f"official MAE checkpoint, encoder only: {sizes}; no decoder (reconstruct needs one)"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def is_official_layout(sd: Mapping[str, torch.Tensor]) -> bool:
    """True when the state dict has the official encoder names."""
    return all(k in sd for k in OFFICIAL_KEYS)


def _depth(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    found = {int(m.group(1)) for k in sd if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return max(found) + 1 if found else 0


def _heads(width: int) -> int:
    heads = width // HEAD_DIM
    return heads if heads >= 1 and width % heads == 0 else 1


def infer_official_arch(sd: Mapping[str, torch.Tensor]) -> OfficialArch:
    """The architecture that the official-layout state dict `sd` was saved from.

    Raises ValueError when a shape is not one MAE produces (e.g. a non-square token grid).
    """
    proj = sd["patch_embed.proj.weight"]  # (D, C, p, p)
    embed_dim, in_chans, patch = int(proj.shape[0]), int(proj.shape[1]), int(proj.shape[2])
    tokens = int(sd["pos_embed"].shape[1]) - 1  # cls token first
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise ValueError(f"pos_embed holds {tokens} patch tokens, not a square grid")
    hidden = int(sd["blocks.0.mlp.fc1.weight"].shape[0])
    has_decoder = "decoder_embed.weight" in sd and "decoder_pred.weight" in sd
    fields = {
        "img_size": grid * patch,
        "patch_size": patch,
        "in_chans": in_chans,
        "embed_dim": embed_dim,
        "depth": _depth(sd, "blocks"),
        "num_heads": _heads(embed_dim),
        "mlp_ratio": hidden / embed_dim,
        # the released visualisation weights were trained on raw pixels
        "norm_pix_loss": not has_decoder,
    }
    if has_decoder:
        dd = int(sd["decoder_embed.weight"].shape[0])  # (Dd, D)
        fields |= {
            "decoder_embed_dim": dd,
            "decoder_depth": _depth(sd, "decoder_blocks"),
            "decoder_num_heads": _heads(dd),
        }
    arch = MAEArch(**fields)
    arch.validate()
    return OfficialArch(arch, has_decoder)
