"""scikit-learn's bundled handwritten digits: real images that need no download."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from maelab.config import DataConfig
from maelab.data.base import DatasetEntry, ImageSet, Splits, channel_stats, register_dataset
from maelab.errors import DataError

NATIVE_SIZE = 8  # px; pixel values are 0..16
DEFAULT_SIZE = 16  # upsampled so that a 4-px patch grid has 16 tokens
NUM_TRAIN = 1437
NUM_TEST = 360  # 20% of 1797


def upsample_digits(images: np.ndarray, size: int) -> torch.Tensor:
    """(N, 8, 8) grey levels 0..16 -> (N, 1, size, size) uint8, bilinear."""
    x = torch.from_numpy(images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)  # (N, 1, 8, 8)
    if size != NATIVE_SIZE:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < NATIVE_SIZE
        )
    return x.round_().clamp_(0, 255).to(torch.uint8)


def build_digits(data_cfg: DataConfig) -> Splits:
    """A stratified, seeded train/test split (default 1437/360) of the 1797 digits."""
    # imported here: sklearn.datasets adds seconds to every `maelab` start otherwise
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images, labels = bunch.images, bunch.target.astype(np.int64)
    n_train = data_cfg.num_train or NUM_TRAIN
    n_test = data_cfg.num_test or NUM_TEST
    if n_train + n_test > len(labels):
        raise DataError(
            f"digits has {len(labels)} images; data.num_train={n_train} plus "
            f"data.num_test={n_test} asks for more"
        )
    try:
        idx_train, idx_test = train_test_split(
            np.arange(len(labels)),
            train_size=n_train,
            test_size=n_test,
            stratify=labels,
            random_state=data_cfg.seed,
        )
    except ValueError as exc:  # a stratified split needs at least one image per class on each side
        raise DataError(f"digits: cannot split {n_train}/{n_test} by class: {exc}") from None
    size = data_cfg.image_size or DEFAULT_SIZE
    x_train = upsample_digits(images[idx_train], size)
    x_test = upsample_digits(images[idx_test], size)
    mean, std = channel_stats(x_train)  # from train only: the test set stays unseen

    def split(x: torch.Tensor, idx: np.ndarray) -> ImageSet:
        return ImageSet(x, torch.from_numpy(labels[idx]), 10, mean, std)

    return Splits(train=split(x_train, idx_train), test=split(x_test, idx_test))


DIGITS = register_dataset(
    DatasetEntry(
        name="digits",
        description="scikit-learn handwritten digits (1797 real 8x8 images, upsampled), offline",
        offline=True,
        build=build_digits,
        num_train=NUM_TRAIN,
        num_test=NUM_TEST,
        augment=False,  # 16-px digits: a 0.2-area crop or a mirror image is no longer the digit
    )
)
