"""Tiny models and hand-made image sets for the evaluation tests (as fixture factories)."""

import pytest
import torch

from maelab.data.base import ImageSet
from maelab.models.mae import MAEArch, MaskedAutoencoder

TINY = dict(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=32,
            decoder_depth=1, decoder_num_heads=2)  # fmt: skip


@pytest.fixture
def make_images():
    def make(
        n: int, channels: int = 3, size: int = 16, classes: int = 4, seed: int = 0
    ) -> ImageSet:
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, classes, (n,), generator=g)
        return ImageSet(images, labels, classes, (0.5,) * channels, (0.25,) * channels)

    return make


@pytest.fixture
def tiny_arch():
    def make(channels: int = 3) -> MAEArch:
        return MAEArch(in_chans=channels, **TINY)

    return make


@pytest.fixture
def tiny(tiny_arch):
    torch.manual_seed(0)
    return MaskedAutoencoder(tiny_arch())
