"""Masked autoencoder with a ViT backbone (He et al. 2022), built from timm blocks.

Parameter names follow the official MAE checkpoints, so `mae_pretrain_vit_*.pth` files load
here and the encoder part loads into a `timm` VisionTransformer unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from maelab.masking import Mask, batch_mask
from maelab.models.ablation import check_ablation, make_block
from maelab.models.pooling import pool_tokens
from maelab.models.pos_embed import POS_EMBED_INITS, sincos_2d


@dataclass(frozen=True)
class MAEArch:
    """Everything that fixes the shapes of a MaskedAutoencoder."""

    img_size: int = 32
    patch_size: int = 4
    in_chans: int = 3
    embed_dim: int = 192
    depth: int = 6
    num_heads: int = 3
    decoder_embed_dim: int = 128
    decoder_depth: int = 2
    decoder_num_heads: int = 4
    mlp_ratio: float = 4.0
    norm_pix_loss: bool = True
    learnable_pos_embed: bool = False
    pos_embed_init: str = "sincos"  # "sincos" | "random" (trunc-normal, std 0.02)
    ablation: str = "none"  # encoder blocks: "none" | "no_skip" | "no_scale" | "no_softmax"
    # k: the decoder reads only a k-wide code (the mean visible token, projected); None: tokens
    code_dim: int | None = None
    loss_on: str = "masked"  # "masked": removed patches only (MAE); "all": every patch

    def validate(self) -> None:
        """Raise ValueError naming the field and the fix."""
        if self.img_size % self.patch_size:
            raise ValueError(
                f"image size {self.img_size} is not divisible by patch size {self.patch_size}; "
                "choose model.patch_size dividing data.image_size"
            )
        for dim, heads, name in (
            (self.embed_dim, self.num_heads, "embed_dim/num_heads"),
            (self.decoder_embed_dim, self.decoder_num_heads, "decoder_embed_dim/decoder_num_heads"),
        ):
            if heads < 1 or dim % heads:
                raise ValueError(f"{name}: {heads} heads do not divide width {dim}; pick a divisor")
            if dim % 4:
                raise ValueError(f"{name}: width {dim} must be a multiple of 4 (2-D sin-cos table)")
        if self.in_chans not in (1, 3):
            raise ValueError(f"in_chans={self.in_chans}: maelab supports 1 or 3 channels")
        if self.depth < 1 or self.decoder_depth < 0:
            raise ValueError("depth must be >= 1 and decoder_depth >= 0")
        if self.pos_embed_init not in POS_EMBED_INITS:
            raise ValueError(
                f"pos_embed_init={self.pos_embed_init!r}: expected one of "
                f"{', '.join(POS_EMBED_INITS)}"
            )
        check_ablation(self.ablation)
        if self.code_dim is not None and not 1 <= self.code_dim <= self.embed_dim:
            # the code is a linear map of one D-wide token: past D its numbers are not free
            raise ValueError(
                f"code_dim={self.code_dim} must be in [1, embed_dim={self.embed_dim}] (the code "
                "projects one embed_dim-wide token); lower model.code_dim"
            )
        if self.loss_on not in ("masked", "all"):
            raise ValueError(f"loss_on={self.loss_on!r}: expected 'masked' or 'all'")

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2


class MaskedAutoencoder(nn.Module):
    """ViT encoder on visible patches + light decoder with a learned mask token.

    `init_seed=None` draws the initial weights from the global RNG, as the official code does.
    With an `init_seed` the encoder draws from its own generator seeded by (seed, "encoder") and
    the decoder from (seed, "decoder"), and the global RNG is neither read nor advanced: the
    same seed gives the same encoder whatever the decoder's shape, so runs pair across settings.

    With `arch.code_dim` k the visible tokens reach the decoder only through a k-wide code: the
    mean visible token (after the final norm) projected by `code_head`. Every decoder position
    starts as its position + the mask token + `decoder_embed(code)`, so the removed patches are
    predicted from k numbers (a code of set width computed from the visible part, Kong et al.
    2023). The code head draws from its own (seed, "code") generator, so a seed gives the same
    encoder with or without a code.
    """

    def __init__(
        self, arch: MAEArch | None = None, *, init_seed: int | None = None, **kwargs: object
    ) -> None:
        super().__init__()
        arch = arch or MAEArch(**kwargs)  # type: ignore[arg-type]
        arch.validate()
        self.arch = arch
        self.patch_size = arch.patch_size
        self.in_chans = arch.in_chans
        self.norm_pix_loss = arch.norm_pix_loss
        # the layers' default draws are all overwritten by initialize_weights; with a seed they
        # come from a forked global stream so that building a model leaves it untouched
        with torch.random.fork_rng(devices=[], enabled=init_seed is not None):
            self._build_layers(arch)
        self.initialize_weights(init_seed)

    def _build_layers(self, arch: MAEArch) -> None:
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        d, dd, n = arch.embed_dim, arch.decoder_embed_dim, arch.num_patches
        pos_grad = arch.learnable_pos_embed

        # encoder
        self.patch_embed = PatchEmbed(arch.img_size, arch.patch_size, arch.in_chans, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, d), requires_grad=pos_grad)
        self.blocks = nn.ModuleList(
            make_block(d, arch.num_heads, arch.mlp_ratio, norm_layer, arch.ablation)
            for _ in range(arch.depth)
        )
        self.norm = norm_layer(d)

        # decoder; with a code it reads the k-wide code instead of the D-wide tokens
        self.decoder_embed = nn.Linear(arch.code_dim or d, dd, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n + 1, dd), requires_grad=pos_grad)
        self.decoder_blocks = nn.ModuleList(
            Block(dd, arch.decoder_num_heads, arch.mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(arch.decoder_depth)
        )
        # depth 0: an affine head that mixes all tokens linearly (no attention, MLP or norm), so
        # a masked patch is still predicted from the visible ones and the encoder still learns
        self.decoder_mix = nn.Linear(n + 1, n + 1, bias=False) if not arch.decoder_depth else None
        self.decoder_norm = norm_layer(dd) if arch.decoder_depth else nn.Identity()
        self.decoder_pred = nn.Linear(dd, arch.patch_size**2 * arch.in_chans, bias=True)
        # the code: mean visible token -> k numbers; made last so that without it nothing moves
        self.code_head = nn.Linear(d, arch.code_dim, bias=True) if arch.code_dim else None

    # ---------------------------------------------------------------- init
    def initialize_weights(self, init_seed: int | None = None) -> None:
        """Official MAE init: sin-cos tables, Linear-style patch projection, xavier Linears.

        Without a seed the draws come from the global RNG in the official order (the patch
        projection's bias keeps the Conv2d default drawn at construction); with a seed, from the
        encoder's and the decoder's own generators (the bias from the same Conv2d distribution).
        `pos_embed_init="random"` draws both tables (trunc-normal, std 0.02) after every other
        weight of their part, so all other weights equal those of the sin-cos model.
        """
        g = self.arch.grid_size
        self.pos_embed.data.copy_(sincos_2d(self.pos_embed.shape[-1], g, cls_token=True)[None])
        self.decoder_pos_embed.data.copy_(
            sincos_2d(self.decoder_pos_embed.shape[-1], g, cls_token=True)[None]
        )
        if init_seed is not None:
            self._initialize_seeded(init_seed)
            return
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(self._init_module)
        if self.arch.pos_embed_init == "random":
            with torch.no_grad():
                for table in (self.pos_embed, self.decoder_pos_embed):
                    nn.init.trunc_normal_(table, std=0.02)

    @staticmethod
    def _init_module(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.no_grad()
    def _initialize_seeded(self, seed: int) -> None:
        enc, dec = init_generator(seed, "encoder"), init_generator(seed, "decoder")
        proj = self.patch_embed.proj
        _draw(proj.weight, lambda t: nn.init.xavier_uniform_(t.view(t.shape[0], -1), generator=enc))
        fan_in = proj.weight[0].numel()
        # Conv2d's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the official model keeps
        _draw(
            proj.bias, lambda t: nn.init.uniform_(t, -(fan_in**-0.5), fan_in**-0.5, generator=enc)
        )
        _draw(self.cls_token, lambda t: nn.init.normal_(t, std=0.02, generator=enc))
        _init_layers((self.blocks, self.norm), enc)
        _draw(self.mask_token, lambda t: nn.init.normal_(t, std=0.02, generator=dec))
        if self.decoder_mix is not None:  # depth 0: the linear head
            _init_layers((self.decoder_mix,), dec)
        decoder = (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred)
        _init_layers(decoder, dec)
        if self.code_head is not None:
            _init_layers((self.code_head,), init_generator(seed, "code"))
        if self.arch.pos_embed_init == "random":
            for table, gen in ((self.pos_embed, enc), (self.decoder_pos_embed, dec)):
                _draw(table, lambda t, gen=gen: nn.init.trunc_normal_(t, std=0.02, generator=gen))

    # ---------------------------------------------------------------- patches
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, L, p*p*C), raster patch order, (row, col, channel) inside a patch."""
        return patchify(imgs, self.patch_size)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, p*p*C) -> (N, C, H, W)."""
        p, c = self.patch_size, self.in_chans
        g = int(round(x.shape[1] ** 0.5))
        x = x.reshape(x.shape[0], g, g, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], c, g * p, g * p)

    # ---------------------------------------------------------------- encoder
    def make_mask(
        self,
        n: int,
        mask_ratio: float,
        noise: torch.Tensor | None = None,
        mask: Mask | None = None,
        device: torch.device | str = "cpu",
    ) -> Mask:
        """The mask of a batch (`maelab.masking.batch_mask`)."""
        return batch_mask(n, self.arch.num_patches, mask_ratio, noise, mask, device)

    def random_masking(
        self, x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep the patches with the smallest noise. x: (N, L, D)."""
        m = self.make_mask(x.shape[0], mask_ratio, noise, device=x.device)
        return m.keep(x), m.removed.to(x.dtype), m.ids_restore

    def forward_encoder(
        self,
        imgs: torch.Tensor,
        mask_ratio: float,
        noise: torch.Tensor | None = None,
        mask: Mask | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns latent (N, 1 + K, D) with the cls token first, mask (N, L), ids_restore (N, L).

        The mask comes from `mask` (a `maelab.masking.Mask`) or from `noise` at `mask_ratio`.
        """
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]  # (N, L, D)
        m = self.make_mask(x.shape[0], mask_ratio, noise, mask, x.device)
        removed = m.removed.to(x.dtype)  # the official float mask: 0 keep, 1 removed
        x = m.keep(x)  # (N, K, D)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), removed, m.ids_restore

    def encode(self, imgs: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """All tokens without masking, in raster order: (N, 1 + L, D), cls first.

        `layer` returns the output of block `layer` (0-based) before the final norm.
        """
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if layer is not None and i == layer:
                return x
        return self.norm(x)

    # ---------------------------------------------------------------- code
    def code_from_tokens(self, latent: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (N, 1 + K, D), cls first, -> the code (N, k): the mean of the K patch
        tokens (the visible ones under a mask), projected by `code_head`."""
        if self.code_head is None:
            raise ValueError("this model has no code (model.code_dim is None)")
        return self.code_head(pool_tokens(latent, "mean"))

    def code(self, imgs: torch.Tensor, mask: Mask | None = None) -> torch.Tensor:
        """The code (N, k) of images: computed from the visible patches of `mask`, or from the
        whole image without one."""
        if mask is None:
            return self.code_from_tokens(self.encode(imgs))
        return self.code_from_tokens(self.forward_encoder(imgs, mask.ratio, mask=mask)[0])

    # ---------------------------------------------------------------- decoder
    def decoder_input(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """The decoder's first residual stream (N, 1 + L, Dd), cls slot first, raster order.

        Without a code: the embedded visible tokens and mask tokens unshuffled, plus positions.
        With one: every slot is its position + the mask token + the embedded code (the only
        path from the visible pixels to the decoder).
        """
        if self.code_head is not None:
            code = self.decoder_embed(self.code_from_tokens(latent))  # (N, Dd)
            return self.decoder_pos_embed + self.mask_token + code.unsqueeze(1)
        x = self.decoder_embed(latent)  # (N, 1 + K, Dd)
        n, num_patches = ids_restore.shape
        mask_tokens = self.mask_token.expand(n, num_patches + 1 - x.shape[1], -1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # (N, L, Dd), shuffled order
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        return torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent (N, 1 + K, D) -> per-patch predictions (N, L, p*p*C)."""
        x = self.decoder_input(latent, ids_restore)
        for blk in self.decoder_blocks:
            x = blk(x)
        if self.decoder_mix is not None:
            x = self.decoder_mix(x.transpose(1, 2)).transpose(1, 2)  # (N, 1 + L, Dd), mixed tokens
        x = self.decoder_norm(x)
        return self.decoder_pred(x)[:, 1:, :]

    # ---------------------------------------------------------------- loss
    def target(self, imgs: torch.Tensor) -> torch.Tensor:
        """Per-patch regression target; with norm_pix, (t - mean) / sqrt(var + 1e-6) per patch."""
        t = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = t.mean(dim=-1, keepdim=True)
            var = t.var(dim=-1, keepdim=True)  # unbiased, as in the official code
            t = (t - mean) / (var + 1.0e-6) ** 0.5
        return t

    def forward_loss(
        self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Per-patch mean squared error averaged over the removed patches (or over every patch
        with `arch.loss_on` "all": the plain autoencoder at mask ratio 0)."""
        counted = torch.ones_like(mask) if self.arch.loss_on == "all" else mask
        loss = (pred.float() - self.target(imgs).float()).pow(2).mean(dim=-1)  # (N, L)
        return (loss * counted).sum() / counted.sum().clamp_min(1.0)

    def forward(
        self,
        imgs: torch.Tensor,
        mask_ratio: float = 0.75,
        noise: torch.Tensor | None = None,
        mask: Mask | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`loss, pred, mask` as the official model; `mask` (a `Mask`) replaces ratio and noise."""
        latent, removed, ids_restore = self.forward_encoder(imgs, mask_ratio, noise, mask)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, removed), pred, removed

    def arch_dict(self) -> dict[str, object]:
        return asdict(self.arch)


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, p*p*C) for any patch size p: raster patch order, (row, col,
    channel) inside a patch. The model's layout; the probes use it at other patch sizes."""
    n, c, h, w = imgs.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"patch size {p} does not divide the image ({h}x{w})")
    x = imgs.reshape(n, c, h // p, p, w // p, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, (h // p) * (w // p), p * p * c)


# ---------------------------------------------------------------- seeded init
def init_generator(seed: int, part: str) -> torch.Generator:
    """A CPU generator for one part of the model, seeded by a stable hash of (seed, part)."""
    digest = hashlib.sha256(f"maelab-init/{int(seed)}/{part}".encode()).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _draw(param: torch.Tensor, init: Callable[[torch.Tensor], object]) -> None:
    """Fill `param` from a CPU draw, so a seed gives the same weights on every device."""
    values = torch.empty(param.shape, dtype=param.dtype)
    init(values)
    param.copy_(values)


def _init_layers(roots: Iterable[nn.Module], gen: torch.Generator) -> None:
    """xavier-uniform Linear weights (zero bias), LayerNorm (1, 0), drawing from `gen`."""
    for root in roots:
        for m in root.modules():
            if isinstance(m, nn.Linear):
                _draw(m.weight, lambda t: nn.init.xavier_uniform_(t, generator=gen))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
