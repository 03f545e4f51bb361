"""Tiny models and hand-made image sets for the evaluation tests (as fixture factories)."""

import pytest
import torch

from maelab.data.base import ImageSet
from maelab.models.mae import MAEArch, MaskedAutoencoder

TINY = dict(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=32,
            decoder_depth=1, decoder_num_heads=2)  # fmt: skip


TINY_MODEL = [f"model.{k}={v}" for k, v in TINY.items() if k not in ("img_size",)]


def pretrain_tiny(run_dir, *extra):
    """A 1-epoch pretraining checkpoint of a tiny model on 256 images (a few seconds)."""
    from maelab.config import load_config
    from maelab.engine.pretrain import pretrain

    cfg = load_config(
        [],
        [f"run_dir={run_dir}", "data.num_train=256", "data.num_test=64", "train.batch_size=64",
         "train.epochs=1", "train.blr=1e-3", "data.num_workers=0", *TINY_MODEL, *extra],
    )  # fmt: skip
    pretrain(cfg, quiet=True)
    return run_dir / "checkpoints" / "last.pt"


@pytest.fixture(scope="session")
def synthetic_ckpt(tmp_path_factory):
    return pretrain_tiny(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def digits_ckpt(tmp_path_factory):
    return pretrain_tiny(tmp_path_factory.mktemp("digits"), "data.name=digits")


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
