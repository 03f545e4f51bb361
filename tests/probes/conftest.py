"""Shared tiny models and synthetic images for the probe tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from maelab.config import SyntheticConfig
from maelab.data.base import ImageSet
from maelab.data.synthetic import generate_synthetic
from maelab.models import MaskedAutoencoder

TINY = dict(
    img_size=16, patch_size=4, in_chans=3, embed_dim=32, depth=2, num_heads=2,
    decoder_embed_dim=16, decoder_depth=2, decoder_num_heads=2,
)  # fmt: skip


def tiny_model(seed: int = 0, **overrides: object) -> MaskedAutoencoder:
    torch.manual_seed(seed)
    return MaskedAutoencoder(**{**TINY, **overrides}).eval()


@pytest.fixture(scope="session")
def synthetic_cfg() -> SyntheticConfig:
    return SyntheticConfig()  # 16x16, 4-px cells, 2x2 cells per region


@pytest.fixture(scope="session")
def images(synthetic_cfg: SyntheticConfig) -> ImageSet:
    return generate_synthetic(96, synthetic_cfg, seed=1)


@pytest.fixture()
def model() -> MaskedAutoencoder:
    return tiny_model()


@pytest.fixture(scope="session")
def make_model() -> Callable[..., MaskedAutoencoder]:
    """``make_model(seed=0, **arch_overrides)``: a tiny MAE (16 px, patch 4, 32 wide)."""
    return tiny_model
