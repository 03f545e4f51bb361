"""2-D sin-cos tables against a numpy re-implementation of the official MAE formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maelab.models.pos_embed import sincos_1d, sincos_2d


def official_1d(embed_dim: int, pos: np.ndarray) -> np.ndarray:
    """omega = 1 / 10000**(arange(D/2) / (D/2)); out = pos x omega; [sin, cos]."""
    omega = np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def official_2d(embed_dim: int, grid_size: int, cls_token: bool = False) -> np.ndarray:
    """grid = meshgrid(w, h); emb_h from grid[0], emb_w from grid[1]; concat; cls row zeros."""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape(2, 1, grid_size, grid_size)
    emb_h = official_1d(embed_dim // 2, grid[0])
    emb_w = official_1d(embed_dim // 2, grid[1])
    emb = np.concatenate([emb_h, emb_w], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)
    return emb


@pytest.mark.parametrize(
    "embed_dim,grid", [(4, 1), (8, 2), (64, 4), (128, 8), (768, 14), (512, 14)]
)
@pytest.mark.parametrize("cls_token", [False, True])
def test_2d_table_matches_official_formula(embed_dim: int, grid: int, cls_token: bool) -> None:
    ours = sincos_2d(embed_dim, grid, cls_token=cls_token)
    ref = official_2d(embed_dim, grid, cls_token=cls_token)
    assert ours.shape == (grid * grid + int(cls_token), embed_dim)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6, rtol=0)


def test_cls_row_is_zero_and_first_half_encodes_column() -> None:
    emb = sincos_2d(16, 4, cls_token=True)
    assert torch.equal(emb[0], torch.zeros(16))
    table = emb[1:].reshape(4, 4, 16)  # (row, col, D), raster order
    # first half depends on the column only, second half on the row only
    assert torch.allclose(table[:, :, :8], table[:1, :, :8].expand(4, 4, 8))
    assert torch.allclose(table[:, :, 8:], table[:, :1, 8:].expand(4, 4, 8))
    assert not torch.allclose(table[0, 0, :8], table[0, 1, :8])


def test_1d_matches_official_formula() -> None:
    pos = np.arange(7, dtype=np.float64)
    np.testing.assert_allclose(
        sincos_1d(10, torch.from_numpy(pos)).numpy(), official_1d(10, pos), atol=1e-12
    )


def test_origin_row_is_sin0_cos1() -> None:
    emb = sincos_2d(8, 3)
    assert torch.equal(emb[0], torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]))


@pytest.mark.parametrize("dim", [6, 10, 3])
def test_2d_rejects_width_not_multiple_of_4(dim: int) -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(dim, 4)


def test_1d_rejects_odd_width() -> None:
    with pytest.raises(ValueError, match="even"):
        sincos_1d(5, torch.arange(3))


def test_matches_hugging_face_table_after_its_half_swap() -> None:
    """HF builds [sin_h|cos_h|sin_w|cos_w] and swaps halves to the official layout."""
    vit_mae = pytest.importorskip("transformers.models.vit_mae.modeling_vit_mae")
    hf = vit_mae.build_2d_sinusoidal_position_embedding(7, 7, embed_dim=64, cls_token=True)
    hf = torch.cat([hf[..., 32:], hf[..., :32]], dim=-1)
    torch.testing.assert_close(sincos_2d(64, 7, cls_token=True), hf, atol=1e-6, rtol=0)
