"""Frozen features: the one path from an encoder (or raw pixels) to what the readouts read.

`encoder_tokens` is the only function that runs an encoder for evaluation: every probe, readout
and baseline gets its tokens from it, on the full image or under a `Mask` (and `encoder_code`
the k-wide code of a model with `model.code_dim`, from those tokens). On top of it, one
`Features` class: the pooled vectors of a set of images and, where a readout needs them, the
patch tokens in raster order (zero where a mask removed the patch).

Probes of a whole split train many small heads on the same features, so `maelab probe`
encodes each split once and saves it under `RUN/features/`. The file name carries a hash of
everything that decides the features (checkpoint size and mtime, data config, pooling, image
size), so a changed checkpoint or dataset never reuses stale features.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from maelab.data.base import ImageSet, Split
from maelab.data.loader import eval_batches, normalize
from maelab.engine.checkpoint import atomic_save
from maelab.masking import Mask
from maelab.models.mae import MaskedAutoencoder, patchify
from maelab.models.pooling import DEFAULT_POOL, Pool, pool_tokens

FEATURES_VERSION = 2  # bump when extraction or the cache layout changes
PIXELS = "pixels"  # the pooled name of raw pixels: the whole image, flattened


@dataclass
class Features:
    """Frozen features of a set of images, on the CPU."""

    pooled: dict[str, torch.Tensor]  # pooling -> (N, d): "cls", "mean" (visible patches), PIXELS
    pool: str  # the pooled entry a readout reads (`x`)
    labels: torch.Tensor | None = None  # (N,) int64
    tokens: torch.Tensor | None = None  # (N, L, D) patches in raster order, zero where masked
    visible: torch.Tensor | None = None  # (N, L) bool, with `tokens`
    patch_size: int = 0
    image_size: int = 0

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def x(self) -> torch.Tensor:
        """(N, d) one vector per image: `pooled[pool]`."""
        return self.pooled[self.pool]

    @property
    def masked(self) -> bool:
        return self.visible is not None and not bool(self.visible.all())

    def head(self, n: int | None) -> Features:
        """The first `n` images (all when None or fewer)."""
        if n is None or len(self) <= n:
            return self
        return replace(
            self,
            pooled={k: v[:n] for k, v in self.pooled.items()},
            **{f: getattr(self, f)[:n] for f in ("labels", "tokens", "visible")
               if getattr(self, f) is not None},
        )  # fmt: skip


@torch.no_grad()
def encoder_tokens(
    model: MaskedAutoencoder,
    images: torch.Tensor,
    mask: Mask | None = None,
    layer: int | None = None,
) -> torch.Tensor:
    """The encoder's tokens of normalised images (N, C, H, W): (N, 1 + K, D), cls first.

    Without `mask`, every patch in raster order (K = L; `layer`: the output of that block
    before the final norm); with it, the visible patches in the encoder's order (`mask.ids_keep`),
    as in training.
    """
    if mask is None:
        return model.encode(images, layer=layer)
    if layer is not None:
        raise ValueError("a block's output is read on the full image only (mask=None)")
    latent, _, _ = model.forward_encoder(images, mask.ratio, mask=mask)
    return latent


@torch.no_grad()
def encoder_code(
    model: MaskedAutoencoder, images: torch.Tensor, mask: Mask | None = None
) -> torch.Tensor:
    """The k-wide code (N, k) of normalised images for a model with `model.code_dim`: its
    pooling and projection head on `encoder_tokens`, from the visible patches under `mask` (the
    code the decoder reads in training) or from the whole image without one."""
    return model.code_from_tokens(encoder_tokens(model, images, mask))


CODE = "code"  # the pooled entry of `code_features`


@torch.no_grad()
def code_features(
    model: MaskedAutoencoder, images: ImageSet, mask: Mask | None = None, batch_size: int = 256
) -> Features:
    """The k-wide code of every image of `images` (`encoder_code`), computed from the visible
    patches of `mask` (one row per image: the code the decoder reads in training) or from the
    whole image; pooled entry `code`."""
    device = next(model.parameters()).device
    codes, start = [], 0
    was_training = model.training
    model.eval()
    try:
        for imgs, _ in eval_batches(images, batch_size, model.arch.img_size, device):
            n = imgs.shape[0]
            part = None if mask is None else mask.rows(slice(start, start + n))
            codes.append(encoder_code(model, imgs, part).float().cpu())
            start += n
    finally:
        model.train(was_training)
    return Features({CODE: torch.cat(codes)}, CODE, images.labels)


def _progress(total: int, batch_size: int, desc: str, quiet: bool) -> tqdm:
    return tqdm(total=math.ceil(total / batch_size), desc=desc, disable=quiet, leave=False,
                file=sys.stderr, dynamic_ncols=True)  # fmt: skip


@torch.no_grad()
def encoder_features(
    model: MaskedAutoencoder,
    split: Split,
    pool: Pool = DEFAULT_POOL,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    quiet: bool = True,
    desc: str = "features",
    max_images: int | None = None,
) -> Features:
    """Pooled tokens of the unmasked encoder for the first `max_images` (None: every) image of
    `split`, in order: the features of the linear probe and k-NN (no tokens kept)."""
    device = torch.device(device)
    total = len(split) if max_images is None else min(len(split), max_images)
    was_training = model.training
    model.eval()
    xs, ys = [], []
    seen = 0
    bar = _progress(total, batch_size, desc, quiet)
    try:
        for imgs, labels in eval_batches(split, batch_size, model.arch.img_size, device):
            imgs, labels = imgs[: total - seen], labels[: total - seen]
            xs.append(pool_tokens(encoder_tokens(model, imgs), pool).float().cpu())
            ys.append(labels.cpu())
            bar.update(1)
            seen += imgs.shape[0]
            if seen >= total:
                break
    finally:
        bar.close()
        model.train(was_training)
    return Features({pool: torch.cat(xs)}, pool, torch.cat(ys).long())


@torch.no_grad()
def token_features(
    model: MaskedAutoencoder,
    images: ImageSet,
    mask: Mask | None = None,
    layer: int | None = None,
    batch_size: int = 256,
) -> Features:
    """Patch tokens and pooled vectors (cls, mean of the visible patch tokens) of every image
    of `images`: on the full image, or under `mask` (one row per image) the encoder sees only
    the visible patches, as in training, and the removed slots stay zero. Reads `mean`."""
    if mask is not None and mask.removed.shape[0] != len(images):
        raise ValueError(f"a mask of {mask.removed.shape[0]} rows for {len(images)} images")
    device = next(model.parameters()).device
    tokens, cls, mean, vis = [], [], [], []
    was_training = model.training
    model.eval()
    try:
        start = 0
        for imgs, _ in eval_batches(images, batch_size, model.arch.img_size, device):
            n = imgs.shape[0]
            part = None if mask is None else mask.rows(slice(start, start + n))
            x = encoder_tokens(model, imgs, part, layer).float().cpu()  # (n, 1 + K, D)
            patches = x[:, 1:]
            tokens.append(patches if part is None else part.to("cpu").scatter(patches))
            cls.append(x[:, 0])
            mean.append(patches.mean(dim=1))
            vis.append(torch.ones(patches.shape[:2], dtype=torch.bool) if part is None
                       else part.visible.cpu())  # fmt: skip
            start += n
    finally:
        model.train(was_training)
    return Features(
        pooled={"cls": torch.cat(cls), "mean": torch.cat(mean)},
        pool="mean",
        labels=images.labels,
        tokens=torch.cat(tokens),
        visible=torch.cat(vis),
        patch_size=model.patch_size,
        image_size=model.arch.img_size,
    )


def pixel_token_features(
    images: ImageSet, patch_size: int, visible: torch.Tensor | None = None
) -> Features:
    """Raw standardised pixels: each patch a token, pooled: the tokens side by side (the whole
    image); with `visible` (N, L) the removed patches are zero, as the encoder's removed slots."""
    x = normalize(images.images, images.mean, images.std)
    tokens = patchify(x, patch_size)  # (N, L, p*p*C)
    if visible is None:
        visible = torch.ones(tokens.shape[:2], dtype=torch.bool)
    tokens = tokens * visible.unsqueeze(-1)
    return Features({PIXELS: tokens.reshape(len(tokens), -1)}, PIXELS, images.labels, tokens,
                    visible, patch_size, x.shape[-1])  # fmt: skip


@torch.no_grad()
def pixel_features(split: Split, image_size: int, batch_size: int = 1024) -> Features:
    """Flattened normalised images (the input the encoder sees) as features: (N, C*H*W)."""
    xs, ys = [], []
    for imgs, labels in eval_batches(split, batch_size, image_size, torch.device("cpu")):
        xs.append(imgs.flatten(1).float())
        ys.append(labels)
    return Features({PIXELS: torch.cat(xs)}, PIXELS, torch.cat(ys).long())


def cache_key(parts: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able description of what makes the features."""
    blob = json.dumps({"version": FEATURES_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def cached_features(
    cache_dir: str | Path, name: str, key: dict[str, Any], compute: Callable[[], Features]
) -> Features:
    """`compute()` once; later calls with the same `name` and `key` read the saved file."""
    path = Path(cache_dir) / f"{name}_{cache_key(key)}.pt"
    if path.is_file():
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            return Features(obj["pooled"], obj["pool"], obj["labels"])
        except Exception:  # a foreign or damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    feats = compute()
    record = {"pooled": feats.pooled, "pool": feats.pool, "labels": feats.labels}
    atomic_save({**record, "key": json.dumps(key, sort_keys=True, default=str)}, path)
    return feats
