"""How much of the pixel variance each level of a synthetic world explains (an oracle).

MAE learns a latent only as far as it helps predict the masked part, so a world in which the
global latent explains little of a hidden region cannot teach it. The share of level ``l`` is
``1 - E[Var(x | level l and above)] / Var(x)``, the R^2 of the best possible regression from
the level's latents to the pixels, estimated by Monte Carlo: draw ``outer`` values of the
level, then ``inner`` images for each with the lower noises redrawn. Pixel-wise (each pixel
depends on its own cell's latent only), so the image-level share equals the average region's.
"""

from __future__ import annotations

import torch

from maelab.config import SyntheticConfig
from maelab.data.synthetic import grid_sizes, make_world, mix_cells, mix_regions, render_cells


def _within_between(x: torch.Tensor) -> tuple[float, float]:
    """(mean within-group variance, total variance), summed over pixels: x (outer, inner, P)."""
    within = x.var(dim=1).mean(dim=0).sum()
    total = x.reshape(-1, x.shape[-1]).var(dim=0).sum()
    return float(within), float(total)


def level_shares(
    cfg: SyntheticConfig, outer: int = 256, inner: int = 64, seed: int = 0
) -> dict[str, float]:
    """Share of the pixel variance explained by ``global`` (z_g), ``region`` (z_g and every
    e_r, i.e. every z_r) and ``cell`` (every z_c: all but the pixel noise), in [0, 1]."""
    if outer < 2 or inner < 2:
        raise ValueError(f"need outer >= 2 and inner >= 2 draws, got {outer}, {inner}")
    world = make_world(cfg)
    gen = torch.Generator().manual_seed(seed)
    cells, regions = grid_sizes(cfg)
    f64 = torch.float64

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=f64)

    def images(z_c: torch.Tensor) -> torch.Tensor:
        x = render_cells(world, cfg, z_c)
        x = (x + cfg.pixel_noise * draw(tuple(x.shape))).clamp(0.0, 1.0)
        return x.reshape(outer, inner, -1)  # (outer, inner, P)

    labels = torch.randint(cfg.num_classes, (outer,), generator=gen)
    z_g = world.class_means[labels] + cfg.class_std * draw((outer, cfg.global_dim))
    z_g = z_g.repeat_interleave(inner, dim=0)
    n = outer * inner

    # z_g fixed per group; e_r, e_c and the pixel noise redrawn
    e_r = draw((n, regions * regions, cfg.region_noise_dim))
    z_r = mix_regions(world, cfg, z_g, e_r)
    within_g, total = _within_between(
        images(mix_cells(world, cfg, z_r, draw((n, cells**2, cfg.cell_noise_dim))))
    )
    # z_g and every e_r fixed per group
    e_r = draw((outer, regions * regions, cfg.region_noise_dim)).repeat_interleave(inner, dim=0)
    z_r = mix_regions(world, cfg, z_g, e_r)
    within_r, _ = _within_between(
        images(mix_cells(world, cfg, z_r, draw((n, cells**2, cfg.cell_noise_dim))))
    )
    # every cell latent fixed per group: only the pixel noise varies
    e_c = draw((outer, cells**2, cfg.cell_noise_dim)).repeat_interleave(inner, dim=0)
    within_c, _ = _within_between(images(mix_cells(world, cfg, z_r, e_c)))
    return {
        "global": 1.0 - within_g / total,
        "region": 1.0 - within_r / total,
        "cell": 1.0 - within_c / total,
    }
