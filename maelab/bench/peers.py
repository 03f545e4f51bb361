"""The peers maelab is timed against: Hugging Face ViTMAE and a textbook MAE on timm blocks.

Both start from a maelab model's weights, so the benchmark compares speed, not initialisation.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from maelab.models import MAEArch, MaskedAutoencoder
from maelab.models.interop import to_hf_vitmae


class TextbookMAE(nn.Module):
    """The official `models_mae.py` (He et al.) rebuilt on current timm blocks: PatchEmbed,
    argsort masking, gather with `repeat`-ed indices, encoder, decoder, norm-pix loss.
    Parameter names are the official ones, so maelab's state dict loads unchanged."""

    def __init__(self, a: MAEArch) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.patch_embed = PatchEmbed(a.img_size, a.patch_size, a.in_chans, a.embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, a.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, a.embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(a.embed_dim, a.num_heads, a.mlp_ratio, qkv_bias=True, norm_layer=norm)
            for _ in range(a.depth)
        )
        self.norm = norm(a.embed_dim)
        self.decoder_embed = nn.Linear(a.embed_dim, a.decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, a.decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, n + 1, a.decoder_embed_dim), requires_grad=False
        )
        self.decoder_blocks = nn.ModuleList(
            Block(
                a.decoder_embed_dim,
                a.decoder_num_heads,
                a.mlp_ratio,
                qkv_bias=True,
                norm_layer=norm,
            )
            for _ in range(a.decoder_depth)
        )
        self.decoder_norm = norm(a.decoder_embed_dim)
        self.decoder_pred = nn.Linear(a.decoder_embed_dim, a.patch_size**2 * a.in_chans)
        self.p, self.c, self.norm_pix_loss = a.patch_size, a.in_chans, a.norm_pix_loss

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        p, h = self.p, imgs.shape[2] // self.p
        x = imgs.reshape(imgs.shape[0], self.c, h, p, h, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(imgs.shape[0], h * h, p**2 * self.c)  # (N, L, p*p*C)

    def random_masking(self, x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None):
        n, length, d = x.shape
        len_keep = int(length * (1 - mask_ratio))
        if noise is None:
            noise = torch.rand(n, length, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, d))
        mask = torch.ones([n, length], device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)
        return x_masked, mask, ids_restore

    def forward(
        self, imgs: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None
    ):
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)
        cls = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_embed(self.norm(x))
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        pred = self.decoder_pred(self.decoder_norm(x))[:, 1:, :]
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum(), pred, mask


def textbook_peer(ours: MaskedAutoencoder) -> TextbookMAE:
    """A TextbookMAE carrying `ours`'s weights."""
    model = TextbookMAE(ours.arch)
    model.load_state_dict(ours.state_dict())
    return model


def hf_peer(ours: MaskedAutoencoder, mask_ratio: float) -> nn.Module:
    """A Hugging Face `ViTMAEForPreTraining` carrying `ours`'s weights (needs transformers)."""
    # a ViTMAEForPreTraining built from a config has all-zero, frozen position embeddings;
    # to_hf_vitmae writes maelab's sin-cos tables (and all weights) in: no effect on speed
    return to_hf_vitmae(ours, mask_ratio=mask_ratio)
