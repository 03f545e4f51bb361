"""The reconstruction figure's maths: exact inverse of norm-pix and of the data normalisation."""

from __future__ import annotations

import torch

from maelab.config import MaskConfig
from maelab.data.base import ImageSet
from maelab.data.loader import eval_batches
from maelab.evaluation.reconstruct import (
    figure_images,
    reconstruct,
    reconstruction_figure,
    spread_rows,
    to_display,
)
from maelab.models.mae import MaskedAutoencoder

ARCH = dict(img_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2,
            decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)  # fmt: skip


def _oracle(channels: int) -> MaskedAutoencoder:
    """A model whose prediction is exactly its own norm-pix target."""
    torch.manual_seed(0)
    model = MaskedAutoencoder(in_chans=channels, norm_pix_loss=True, **ARCH)

    def forward(imgs, mask_ratio=0.75, noise=None, mask=None):
        removed = model.make_mask(imgs.shape[0], mask_ratio, noise, mask).removed.float()
        return torch.zeros(()), model.target(imgs), removed

    model.forward = forward  # type: ignore[method-assign]
    return model


def _set(images: torch.Tensor, labels: torch.Tensor) -> ImageSet:
    x = images.float() / 255
    mean = tuple(x.mean(dim=(0, 2, 3)).tolist())
    std = tuple(x.std(dim=(0, 2, 3)).tolist())
    return ImageSet(images, labels, int(labels.max()) + 1, mean, std)


def test_exact_norm_pix_prediction_reproduces_the_image() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 16, 16), generator=g, dtype=torch.uint8)
    images[0] = 128  # a flat grey image: zero variance in every patch
    split = _set(images, torch.arange(4))
    imgs, _ = next(iter(eval_batches(split, 4, 16, torch.device("cpu"))))
    out = reconstruct(_oracle(3), imgs, MaskConfig(ratio=0.75))
    assert out["hidden"].sum() == 4 * 16 * 12  # 12 of 16 patches, 16 pixels each
    for key in ("reconstruction", "pasted"):
        torch.testing.assert_close(out[key], imgs, atol=1e-4, rtol=0)
    for i in range(4):  # back in pixels: the uint8 image, grey stays grey
        shown = to_display(out["pasted"][i], split.mean, split.std) * 255
        torch.testing.assert_close(shown, images[i].permute(1, 2, 0).float(), atol=0.05, rtol=0)


def test_visible_patches_are_the_input_whatever_the_model_predicts() -> None:
    torch.manual_seed(0)
    model = MaskedAutoencoder(in_chans=1, norm_pix_loss=True, **ARCH)  # untrained: poor output
    imgs = torch.randn(3, 1, 16, 16)
    out = reconstruct(model, imgs, MaskConfig(ratio=0.5))
    visible = out["hidden"] == 0
    assert torch.equal(out["pasted"][visible], imgs[visible])
    assert not torch.allclose(out["pasted"][~visible], imgs[~visible], atol=1e-2)


def test_rows_spread_across_classes() -> None:
    labels = torch.tensor([0] * 50 + [1] * 50 + [2] * 50)  # sorted, as a folder's val split
    rows = spread_rows(labels, 6)
    assert labels[rows].tolist() == [0, 1, 2, 0, 1, 2]
    assert spread_rows(torch.tensor([3, 3]), 6) == [0, 1]
    split = _set(torch.zeros(150, 1, 16, 16, dtype=torch.uint8), labels)
    assert sorted(set(figure_images(split, 6).labels.tolist())) == [0, 1, 2]


def test_figure_is_written(tmp_path) -> None:
    labels = torch.arange(12) % 4
    split = _set(torch.randint(0, 256, (12, 1, 16, 16), dtype=torch.uint8), labels)
    path = reconstruction_figure(_oracle(1), split, tmp_path / "r.png", MaskConfig(ratio=0.75))
    assert path.stat().st_size > 1000
