"""Selectivity readouts on known-answer features: tokens built from the latents themselves."""

from __future__ import annotations

import math

import pytest
import torch

from maelab.data.base import ImageSet
from maelab.evaluation.features import PIXELS, Features, pixel_token_features, token_features
from maelab.masking import MaskGeometry, block_noise, mask_from_noise
from maelab.probes.inputs import normalised, unit_patches
from maelab.probes.selectivity import principal_views, selectivity

SIZE, PATCH = 16, 4  # 4x4 patches; regions 8 px (2x2 patches), cells 4 px (one patch)


def world(n: int, seed: int) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    latents = {
        "global": torch.randn(n, 3, generator=g),
        "region_noise": torch.randn(n, 4, 2, generator=g),
        "cell_noise": torch.randn(n, 16, 2, generator=g),
        "control": torch.randn(n, 2, generator=g),
    }
    images = torch.zeros(n, 3, SIZE, SIZE, dtype=torch.uint8)
    return ImageSet(images, torch.zeros(n, dtype=torch.long), 1, (0.5,) * 3, (0.25,) * 3, latents)


def visible_from_noise(noise: torch.Tensor, ratio: float) -> torch.Tensor:
    return mask_from_noise(noise, ratio).visible


def token_view(tokens: torch.Tensor, visible: torch.Tensor, pooled: torch.Tensor,
               patch: int, size: int, pool: str = "mean") -> Features:  # fmt: skip
    return Features({pool: pooled}, pool, tokens=tokens, visible=visible, patch_size=patch,
                    image_size=size)  # fmt: skip


def known_view(
    images: ImageSet, carries: set[str], visible: torch.Tensor | None = None, seed: int = 0
) -> Features:
    """Tokens that hold exactly the named latents of their own region / cell (plus noise)."""
    n = len(images)
    g = torch.Generator().manual_seed(seed + 100)
    lat = images.latents
    region_of = torch.zeros(16, dtype=torch.long)
    for r, patches in enumerate(unit_patches(SIZE, 8, PATCH)):
        region_of[patches] = r
    parts = [torch.randn(n, 16, 4, generator=g)]  # nuisance dimensions
    if "e_r" in carries:
        parts.append(lat["region_noise"][:, region_of])
    if "e_c" in carries:
        parts.append(lat["cell_noise"])
    if "z_g" in carries:
        parts.append(lat["global"].unsqueeze(1).expand(-1, 16, -1))
    tokens = torch.cat(parts, dim=-1)  # (N, 16, D)
    if visible is None:
        visible = torch.ones(n, 16, dtype=torch.bool)
    tokens = tokens * visible.unsqueeze(-1)
    vis = visible.unsqueeze(-1).float()
    pooled = (tokens * vis).sum(1) / vis.sum(1)
    return token_view(tokens, visible, pooled, PATCH, SIZE)


@pytest.fixture(scope="module")
def sets() -> tuple[ImageSet, ImageSet]:
    return world(300, 0), world(300, 1)


def test_each_level_reads_one_exactly_when_carried_and_zero_when_not(sets) -> None:
    fit, held = sets
    res = selectivity(known_view(fit, {"e_r", "z_g"}), fit, known_view(held, {"e_r", "z_g"}), held)
    assert res.linear["e_r"] > 0.98 and res.linear["z_g"] > 0.98
    assert abs(res.linear["e_c"]) < 0.1  # cell noise is not in the tokens
    assert abs(res.linear["control"]) < 0.1  # independent of everything
    assert all(math.isnan(v) for v in res.kernel.values())  # kernel readout off


def test_kernel_readout_beside_the_linear_one(sets) -> None:
    fit, held = sets
    res = selectivity(known_view(fit, {"e_c"}), fit, known_view(held, {"e_c"}), held, kernel=True)
    assert res.linear["e_c"] > 0.98 and res.kernel["e_c"] > 0.8
    assert abs(res.linear["e_r"]) < 0.1


def test_masked_view_scores_visible_positions_only(sets) -> None:
    fit, held = sets
    geom = MaskGeometry(4, PATCH)
    g = torch.Generator().manual_seed(3)
    # region-sized units at 0.75: one whole region visible per image, three hidden
    vf = visible_from_noise(block_noise(len(fit), geom, 0.75, 8, g), 0.75)
    vh = visible_from_noise(block_noise(len(held), geom, 0.75, 8, g), 0.75)
    assert (vf.sum(1) == 4).all()
    res = selectivity(
        known_view(fit, {"e_r"}, vf), fit, known_view(held, {"e_r"}, vh), held, readouts=("e_r",)
    )
    # hidden regions are not scored (they would read 0): the visible ones carry e_r exactly
    assert res.linear["e_r"] > 0.98
    assert math.isnan(res.linear["z_g"])  # left out of `readouts`
    # patch-sized units leave regions partly visible: the mean of the visible tokens still
    # carries e_r exactly, whichever and however many of the region's patches are visible
    vf = visible_from_noise(block_noise(len(fit), geom, 0.75, 4, g), 0.75)
    vh = visible_from_noise(block_noise(len(held), geom, 0.75, 4, g), 0.75)
    res = selectivity(
        known_view(fit, {"e_r"}, vf), fit, known_view(held, {"e_r"}, vh), held, readouts=("e_r",)
    )
    assert res.linear["e_r"] > 0.98


def test_token_features_masked_tokens_match_forward_encoder(make_model, images) -> None:
    model = make_model()
    sub = ImageSet(images.images[:5], images.labels[:5], images.num_classes, images.mean,
                   images.std, {k: v[:5] for k, v in images.latents.items()})  # fmt: skip
    noise = torch.rand(5, 16, generator=torch.Generator().manual_seed(0))
    view = token_features(model, sub, mask_from_noise(noise, 0.75), batch_size=2)
    vis = visible_from_noise(noise, 0.75)
    assert torch.equal(view.visible, vis) and (vis.sum(1) == 4).all()
    assert (view.tokens[~vis] == 0).all()
    with torch.no_grad():
        latent, _, _ = model.forward_encoder(normalised(sub), 0.75, noise)
    ids_keep = noise.argsort(dim=1)[:, :4]  # the kept patches, in the encoder's order
    kept = view.tokens.gather(1, ids_keep.unsqueeze(-1).expand(-1, -1, view.tokens.shape[-1]))
    torch.testing.assert_close(kept, latent[:, 1:])
    torch.testing.assert_close(view.x, latent[:, 1:].mean(1))
    torch.testing.assert_close(view.pooled["cls"], latent[:, 0])
    full = token_features(model, sub)
    assert full.visible.all() and not full.masked and view.masked
    px = pixel_token_features(sub, PATCH, vis)
    assert (px.tokens[~vis] == 0).all() and px.tokens.shape == (5, 16, PATCH * PATCH * 3)


def test_principal_views_keep_what_dominates_and_pool_as_the_source() -> None:
    """A token set whose variance lies in 2 known directions: the top-2 projection keeps a
    latent written there and drops one written in a faint direction; pixels stay concatenated."""
    g = torch.Generator().manual_seed(0)
    n, length, d = 200, 4, 6
    strong = torch.randn(n, length, 2, generator=g) * 5.0
    faint = torch.randn(n, length, 1, generator=g) * 0.01
    tokens = torch.cat([strong, faint, torch.zeros(n, length, d - 3)], dim=-1)
    vis = torch.ones(n, length, dtype=torch.bool)
    view = token_view(tokens, vis, tokens.mean(1), 4, 8)
    pf, ph = principal_views(view, view, 2)
    assert pf.tokens.shape == (n, length, 2) and pf.x.shape == (n, 2)
    # the kept subspace is the strong one: the faint coordinate is not recoverable from it
    coef = torch.linalg.lstsq(pf.tokens.reshape(-1, 2), faint.reshape(-1, 1)).solution
    resid = faint.reshape(-1, 1) - pf.tokens.reshape(-1, 2) @ coef
    assert float(resid.var() / faint.var()) > 0.95
    target = strong.reshape(-1, 2) - strong.reshape(-1, 2).mean(dim=0)
    coef = torch.linalg.lstsq(pf.tokens.reshape(-1, 2), target).solution
    assert float((target - pf.tokens.reshape(-1, 2) @ coef).var(dim=0).max()) < 1e-6
    pix = token_view(tokens, vis, tokens.reshape(n, -1), 4, 8, PIXELS)
    assert principal_views(pix, pix, 2)[0].x.shape == (n, length * 2)
