"""A positive control's images: the study world's images with one source latent redrawn in a
share of them (`redraw_latent`), every other latent and each image's pixel noise kept."""

from __future__ import annotations

from dataclasses import replace

import torch

from maelab.config import SyntheticConfig
from maelab.data.base import ImageSet
from maelab.data.synthetic import make_world, mix_cells, mix_regions, render_cells

REDRAWABLE = ("global", "region_noise", "cell_noise")  # the sources `redraw_latent` can replace


def redraw_latent(
    images: ImageSet, cfg: SyntheticConfig, level: str, share: float, generator: torch.Generator
) -> ImageSet:
    """The same images with one source latent (`REDRAWABLE`) replaced, in `round(share * N)` of
    them chosen at random, by another chosen image's (an independent draw of the same law), and
    re-rendered; every image keeps its own pixel noise and the stored latents stay the originals.

    A positive control: the replaced images carry none of their own `level`, yet the set's
    pixels follow the world's law, so the best linear readout of `level` from any function of
    the pixels keeps (1 - share)^2 of its R^2 (population). Images not chosen are unchanged.
    """
    if level not in REDRAWABLE:
        raise ValueError(f"level={level!r}: expected one of {', '.join(REDRAWABLE)}")
    world = make_world(cfg)
    lat = {k: images.latents[k].double() for k in REDRAWABLE}
    n = len(images)
    chosen = torch.randperm(n, generator=generator)[: round(min(max(share, 0.0), 1.0) * n)]
    if len(chosen) < 2:
        return images
    donors = torch.roll(chosen, 1)  # each chosen image takes the next chosen one's draw

    def render(z_g: torch.Tensor, e_r: torch.Tensor, e_c: torch.Tensor) -> torch.Tensor:
        return render_cells(
            world, cfg, mix_cells(world, cfg, mix_regions(world, cfg, z_g, e_r), e_c)
        )

    base = render(lat["global"], lat["region_noise"], lat["cell_noise"])
    residual = images.images.double() / 255.0 - base  # pixel noise and rounding, per image
    swapped = dict(lat)
    swapped[level] = lat[level].clone()
    swapped[level][chosen] = lat[level][donors]
    clean = render(swapped["global"], swapped["region_noise"], swapped["cell_noise"])
    out = images.images.clone()
    pixels = (clean[chosen] + residual[chosen]).clamp(0.0, 1.0).mul(255.0).round()
    out[chosen] = pixels.to(torch.uint8)
    return replace(images, images=out)
