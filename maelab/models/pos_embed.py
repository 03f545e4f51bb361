"""Fixed 2-D sine-cosine position embeddings (as in the official MAE code)."""

from __future__ import annotations

import torch

# how a model's positional tables start: the sin-cos table, or trunc-normal(0.02) as in ViT
POS_EMBED_INITS: tuple[str, ...] = ("sincos", "random")


def sincos_1d(embed_dim: int, pos: torch.Tensor) -> torch.Tensor:
    """(M,) positions -> (M, embed_dim): [sin(pos * w), cos(pos * w)], w = 1 / 10000^(2i/D)."""
    if embed_dim % 2:
        raise ValueError(f"embed_dim={embed_dim} must be even for sin-cos embeddings")
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega  # (D/2,)
    out = pos.reshape(-1).to(torch.float64)[:, None] * omega[None, :]  # (M, D/2)
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_2d(embed_dim: int, grid_size: int, cls_token: bool = False) -> torch.Tensor:
    """(grid_size**2 [+1], embed_dim) table; first half encodes the column, second the row.

    Matches the official layout: `np.meshgrid(w, h)` puts the width coordinate first.
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim={embed_dim} must be divisible by 4 for 2-D sin-cos embeddings")
    coords = torch.arange(grid_size, dtype=torch.float64)
    row, col = torch.meshgrid(coords, coords, indexing="ij")  # (G, G) each
    emb = torch.cat([sincos_1d(embed_dim // 2, col), sincos_1d(embed_dim // 2, row)], dim=1)
    if cls_token:
        emb = torch.cat([torch.zeros(1, embed_dim, dtype=torch.float64), emb], dim=0)
    return emb.float()
