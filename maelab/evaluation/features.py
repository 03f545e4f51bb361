"""Frozen features of a whole split (encoder or raw pixels), cached on disk.

Probes train many small heads on the same features, so each split is encoded once, with the
full image and no masking, and saved under `RUN/features/`. The file name carries a hash of
everything that decides the features (checkpoint size and mtime, data config, pooling, image
size), so a changed checkpoint or dataset never reuses stale features.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from maelab.data.base import Split
from maelab.data.loader import eval_batches
from maelab.engine.checkpoint import atomic_save
from maelab.models.mae import MaskedAutoencoder
from maelab.models.pooling import Pool, pool_tokens

FEATURES_VERSION = 1  # bump when extraction changes, so old caches are not reused


@dataclass
class Features:
    """Features and labels of one split, on the CPU."""

    x: torch.Tensor  # (N, D) float32
    y: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return self.x.shape[0]


def _progress(split: Split, batch_size: int, desc: str, quiet: bool) -> tqdm:
    total = math.ceil(len(split) / batch_size)
    return tqdm(
        total=total, desc=desc, disable=quiet, leave=False, file=sys.stderr, dynamic_ncols=True
    )


@torch.no_grad()
def encoder_features(
    model: MaskedAutoencoder,
    split: Split,
    pool: Pool = "cls",
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    quiet: bool = True,
    desc: str = "features",
) -> Features:
    """Pooled final-norm tokens of the unmasked encoder for every image of `split`, in order."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    xs, ys = [], []
    bar = _progress(split, batch_size, desc, quiet)
    try:
        for imgs, labels in eval_batches(split, batch_size, model.arch.img_size, device):
            xs.append(pool_tokens(model.encode(imgs), pool).float().cpu())
            ys.append(labels.cpu())
            bar.update(1)
    finally:
        bar.close()
        model.train(was_training)
    return Features(torch.cat(xs), torch.cat(ys).long())


@torch.no_grad()
def pixel_features(split: Split, image_size: int, batch_size: int = 1024) -> Features:
    """Flattened normalised images (the input the encoder sees) as features: (N, C*H*W)."""
    xs, ys = [], []
    for imgs, labels in eval_batches(split, batch_size, image_size, torch.device("cpu")):
        xs.append(imgs.flatten(1).float())
        ys.append(labels)
    return Features(torch.cat(xs), torch.cat(ys).long())


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
            return Features(obj["x"], obj["y"])
        except Exception:  # a foreign or damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    feats = compute()
    atomic_save(
        {"x": feats.x, "y": feats.y, "key": json.dumps(key, sort_keys=True, default=str)}, path
    )
    return feats
