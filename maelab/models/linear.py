"""A linear masked autoencoder: code = E x~, reconstruction = D code (Bisulco et al. 2025).

``x~`` is the image with its removed patches set to zero; the mask, the loss and the call
signature are the ViT MAE's (maelab.models.mae), so maelab's engine, masks and optimizer train
it unchanged. Without biases the end-to-end map ``W = D E`` (`end_to_end`) is the whole model:
on Gaussian images its expected loss, reach and per-latent energy are exact functions of W
(maelab.theory.gaussian). ``code_dim`` k below the pixel count makes it a rank-k map; at full
rank the factorisation adds nothing but a non-convex path to the same optimum, so one D x D map
is trained (the code is the reconstruction, the decoder the identity).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from maelab.masking import Mask, batch_mask
from maelab.models.mae import init_generator, patchify

LINEAR_KIND = "linear"


@dataclass(frozen=True)
class LinearArch:
    """Everything that fixes the shapes and the loss of a LinearMAE."""

    img_size: int = 16
    patch_size: int = 4
    in_chans: int = 1
    code_dim: int | None = None  # k; None: the pixel count (full rank)
    norm_pix_loss: bool = False
    loss_on: str = "masked"  # "masked": removed patches only (MAE); "all": every pixel
    kind: str = LINEAR_KIND  # stored with the weights: which model they belong to

    def validate(self) -> None:
        """Raise ValueError naming the field and the fix."""
        if self.img_size % self.patch_size:
            raise ValueError(
                f"image size {self.img_size} is not divisible by patch size {self.patch_size}; "
                "choose model.patch_size dividing data.image_size"
            )
        if self.code_dim is not None and self.code_dim < 1:
            raise ValueError(f"code_dim={self.code_dim} must be >= 1")
        if self.loss_on not in ("masked", "all"):
            raise ValueError(f"loss_on={self.loss_on!r}: expected 'masked' or 'all'")

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def num_pixels(self) -> int:
        return self.in_chans * self.img_size**2

    @property
    def width(self) -> int:
        return min(self.code_dim or self.num_pixels, self.num_pixels)

    @property
    def full_rank(self) -> bool:
        return self.width == self.num_pixels


class LinearMAE(nn.Module):
    """Encoder E (k x D) and decoder D (D x k), no biases, on zero-filled images (at full rank
    E alone, D x D, and the identity as decoder).

    With an ``init_seed`` E and D are xavier-uniform draws from the (seed, "encoder") and
    (seed, "decoder") generators (as the ViT MAE's parts), leaving the global RNG untouched.
    """

    def __init__(self, arch: LinearArch, *, init_seed: int | None = None) -> None:
        super().__init__()
        arch.validate()
        self.arch = arch
        self.patch_size, self.in_chans = arch.patch_size, arch.in_chans
        self.norm_pix_loss = arch.norm_pix_loss
        self.decoder: nn.Linear | nn.Identity
        with torch.random.fork_rng(devices=[], enabled=init_seed is not None):
            self.encoder = nn.Linear(arch.num_pixels, arch.width, bias=False)
            full = arch.full_rank
            self.decoder = nn.Identity() if full else nn.Linear(arch.width, arch.num_pixels, False)
        if init_seed is not None:
            for layer, part in ((self.encoder, "encoder"), (self.decoder, "decoder")):
                if not isinstance(layer, nn.Linear):
                    continue
                values = torch.empty(layer.weight.shape)  # a CPU draw: the same on every device
                nn.init.xavier_uniform_(values, generator=init_generator(init_seed, part))
                with torch.no_grad():
                    layer.weight.copy_(values)

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        return patchify(imgs, self.patch_size)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, p*p*C) -> (N, C, H, W)."""
        p, c, g = self.patch_size, self.in_chans, self.arch.grid_size
        x = x.reshape(x.shape[0], g, g, p, p, c)
        return torch.einsum("nhwpqc->nchpwq", x).reshape(x.shape[0], c, g * p, g * p)

    def pixel_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Patch mask (N, L) -> pixel mask (N, 1, H, W), 1 = removed."""
        g, p = self.arch.grid_size, self.patch_size
        grid = mask.view(-1, 1, g, g)
        return grid.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)

    def make_mask(
        self, n: int, mask_ratio: float, noise: torch.Tensor | None = None,
        mask: Mask | None = None, device: torch.device | str = "cpu",
    ) -> Mask:  # fmt: skip
        """The mask of a batch (`maelab.masking.batch_mask`), as the ViT MAE's."""
        return batch_mask(n, self.arch.num_patches, mask_ratio, noise, mask, device)

    def forward_encoder(
        self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None,
        mask: Mask | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """Code (N, 1, k) of the zero-filled image, mask (N, L) 1 = removed, ids_restore (N, L)."""
        n = imgs.shape[0]
        m = self.make_mask(n, mask_ratio, noise, mask, device=imgs.device)
        removed = m.removed.to(imgs.dtype)
        visible = imgs * (1.0 - self.pixel_mask(removed))  # (N, C, H, W), removed patches zero
        return self.encoder(visible.reshape(n, -1)).unsqueeze(1), removed, m.ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Code (N, 1, k) -> per-patch predictions (N, L, p*p*C) of the whole image."""
        a = self.arch
        out = self.decoder(latent[:, 0]).view(-1, a.in_chans, a.img_size, a.img_size)
        return self.patchify(out)

    def target(self, imgs: torch.Tensor) -> torch.Tensor:
        t = self.patchify(imgs)
        if self.norm_pix_loss:
            mean, var = t.mean(dim=-1, keepdim=True), t.var(dim=-1, keepdim=True)
            t = (t - mean) / (var + 1.0e-6) ** 0.5
        return t

    def forward_loss(
        self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Per-patch mean squared error averaged over removed patches (or all, ``loss_on``)."""
        counted = torch.ones_like(mask) if self.arch.loss_on == "all" else mask
        loss = (pred.float() - self.target(imgs).float()).pow(2).mean(dim=-1)  # (N, L)
        return (loss * counted).sum() / counted.sum().clamp_min(1.0)

    def forward(
        self, imgs: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None,
        mask: Mask | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """`loss, pred, mask` as the ViT MAE; `mask` (a `Mask`) replaces ratio and noise."""
        latent, removed, ids_restore = self.forward_encoder(imgs, mask_ratio, noise, mask)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, removed), pred, removed

    def encode(self, imgs: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """The code of the whole image, nothing removed: (N, 1, k)."""
        return self.encoder(imgs.reshape(imgs.shape[0], -1)).unsqueeze(1)

    @torch.no_grad()
    def end_to_end(self) -> torch.Tensor:
        """W = D E (D, D): reconstruction = W x~, pixels flattened as (C, H, W)."""
        enc = self.encoder.weight
        if isinstance(self.decoder, nn.Linear):
            return self.decoder.weight @ enc
        return enc.clone()

    def arch_dict(self) -> dict[str, object]:
        return asdict(self.arch)
