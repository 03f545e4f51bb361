"""Level as selectivity: how much of each level's *own* noise a feature source keeps.

In an invertible hierarchy every level carries the global latent z_g, so R^2(z_g) alone does not
say which level a model learned. With one probe for every source (trained encoder, random
encoder, raw pixels) this module reads, held out (fit on one image set, scored on another):

* ``e_r``: R^2 of a region's own noise from the tokens of that region (one regression per
  region, R^2 averaged over regions);
* ``e_c``: R^2 of a cell's own noise from the tokens of that cell (averaged over cells);
* ``z_g`` and ``control``: R^2 from the pooled feature (mean of the tokens; the whole image for
  pixels). The control latent is independent of the image and must read ~0.
* ``s_g``: the same for z_g as the regions receive it, ``s_g = h_g(z_g)`` (invertible,
  non-linear in z_g). Kong et al. identify the shared latent up to an invertible map, so a
  linear readout of z_g itself can sit below that of s_g for an encoder that recovered it.

The linear ridge is the primary readout, Nystroem-RBF ridge the one beside it. The readouts
take `maelab.evaluation.features.Features` with tokens (`token_features`,
`pixel_token_features`) and read their pooled vector `x` (the mean of the visible tokens; the
whole image for pixels). On the full view a unit's feature is the concatenation of its tokens.
Features made under a `Mask` (the training mask applied) hold the encoder's tokens of the
visible patches only; a unit's feature is then the mean of its visible tokens (a concatenation
with empty slots would mix how many patches are visible into the readout), scored on the images
where the unit has a visible patch: the readout at visible positions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from maelab.data.base import ImageSet
from maelab.evaluation.features import PIXELS, Features
from maelab.metric_names import SELECTIVITY_READOUTS
from maelab.probes.identifiability import as_numpy, kernel_maps, kernel_ridge, standardise
from maelab.probes.inputs import unit_patches
from maelab.probes.ridge import r2, ridge_loo

READOUTS = SELECTIVITY_READOUTS
MIN_ROWS = 8  # a region / cell visible in fewer fit or held-out images is not scored


@dataclass(frozen=True)
class Readout:
    """R^2 per readout (`READOUTS`), linear ridge and Nystroem-RBF ridge (nan when off)."""

    linear: dict[str, float]
    kernel: dict[str, float]


def principal_views(fit: Features, held: Features, k: int) -> tuple[Features, Features]:
    """Both views projected on the top-`k` principal directions of the fit view's visible
    tokens: what dominates a representation, not all it contains (a residual stream keeps its
    input, so every source contains nearly everything). Pooled as the source pools: pixels side
    by side, encoder tokens by their visible mean."""
    x = fit.tokens[fit.visible].double()
    mean = x.mean(dim=0)
    basis = torch.linalg.svd(x - mean, full_matrices=False)[2][:k].T  # (D, k)

    def project(view: Features) -> Features:
        tokens = ((view.tokens.double() - mean) @ basis).float() * view.visible.unsqueeze(-1)
        if view.pool == PIXELS:
            pooled = tokens.reshape(len(tokens), -1)
        else:
            counts = view.visible.sum(dim=1, keepdim=True).clamp(min=1)
            pooled = tokens.sum(dim=1) / counts
        return replace(view, pooled={view.pool: pooled}, tokens=tokens)

    return project(fit), project(held)


def _fit_score(xf: np.ndarray, yf: np.ndarray, xh: np.ndarray, yh: np.ndarray, kernel: bool,
               seed: int) -> tuple[float, float]:  # fmt: skip
    xf, xh = standardise(xf, xh)
    lin = r2(yh, ridge_loo(xf, yf).predict(xh))
    if not kernel:
        return lin, math.nan
    pred, _ = kernel_ridge(kernel_maps(xf, xh, (0.5, 2.0), 256, seed), yf)
    return lin, r2(yh, pred)


def _groups(view: Features, count: int) -> list[list[int]]:
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"{count} units do not form a square grid")
    return unit_patches(view.image_size, view.image_size // side, view.patch_size)


def _unit_feature(view: Features, patches: list[int], rows: torch.Tensor) -> np.ndarray:
    """(n, features) of one unit on the chosen images: its tokens side by side on a full view,
    the mean of its visible tokens on a masked one."""
    tokens = view.tokens[rows][:, patches]  # (n, P, D)
    if view.masked:
        vis = view.visible[rows][:, patches].unsqueeze(-1).float()  # (n, P, 1)
        return as_numpy((tokens * vis).sum(1) / vis.sum(1).clamp_min(1.0))
    return as_numpy(tokens.reshape(tokens.shape[0], -1))


def _own_noise(
    fit: Features, yf: torch.Tensor, held: Features, yh: torch.Tensor, kernel: bool, seed: int
) -> tuple[float, float]:
    """Mean R^2 over units of each unit's noise (N, U, d) from the unit's own tokens."""
    scores = []
    for u, patches in enumerate(_groups(fit, yf.shape[1])):
        rf, rh = fit.visible[:, patches].any(1), held.visible[:, patches].any(1)
        if int(rf.sum()) < MIN_ROWS or int(rh.sum()) < MIN_ROWS:
            continue  # this unit is (almost) never visible under the mask
        xf, xh = _unit_feature(fit, patches, rf), _unit_feature(held, patches, rh)
        scores.append(_fit_score(xf, as_numpy(yf[rf, u]), xh, as_numpy(yh[rh, u]), kernel, seed))
    if not scores:
        return math.nan, math.nan
    lin, ker = zip(*scores, strict=True)
    return float(np.mean(lin)), float(np.mean(ker))


def selectivity(
    fit: Features,
    fit_images: ImageSet,
    held: Features,
    held_images: ImageSet,
    kernel: bool = False,
    seed: int = 0,
    readouts: tuple[str, ...] = READOUTS,
) -> Readout:
    """Held-out R^2 of z_g, s_g, e_r, e_c and the control latent (see the module docstring).

    ``fit_images`` / ``held_images`` supply the latents of the images the views were made of,
    in the same order; a latent the world lacks (no cell noise), or one left out of
    ``readouts``, reads nan.
    """
    lat_f, lat_h = fit_images.latents, held_images.latents
    if "global" not in lat_f or "control" not in lat_f:
        raise ValueError("selectivity needs the synthetic dataset's latents (global, control)")
    linear, kern = {}, {}
    with threadpool_limits(1, user_api="blas"):  # many small problems: one thread is fastest
        xf, xh = as_numpy(fit.x), as_numpy(held.x)
        for name, key in (("z_g", "global"), ("s_g", "global_shared"), ("control", "control")):
            if name not in readouts or key not in lat_f:
                linear[name], kern[name] = math.nan, math.nan
                continue
            linear[name], kern[name] = _fit_score(
                xf, as_numpy(lat_f[key]), xh, as_numpy(lat_h[key]), kernel, seed
            )
        for name, key in (("e_r", "region_noise"), ("e_c", "cell_noise")):
            if name in readouts and key in lat_f and lat_f[key].dim() == 3 and lat_f[key].shape[-1]:
                linear[name], kern[name] = _own_noise(
                    fit, lat_f[key], held, lat_h[key], kernel, seed
                )
            else:
                linear[name], kern[name] = math.nan, math.nan
    return Readout(linear, kern)


def code_selectivity(
    fit: Features, fit_images: ImageSet, held: Features, held_images: ImageSet, seed: int = 0,
    readouts: tuple[str, ...] = READOUTS,
) -> dict[str, float]:  # fmt: skip
    """Held-out R^2 of each latent from one whole-image vector per image (a model's k-wide
    code): z_g, s_g and the control as `selectivity` reads them; e_r / e_c of every region /
    cell from the same vector (one ridge per unit), averaged over units."""
    out = selectivity(fit, fit_images, held, held_images, seed=seed,
                      readouts=tuple(r for r in readouts if r in ("z_g", "s_g", "control"))).linear  # fmt: skip
    xf, xh = as_numpy(fit.x), as_numpy(held.x)
    with threadpool_limits(1, user_api="blas"):
        for name, key in (("e_r", "region_noise"), ("e_c", "cell_noise")):
            lat_f, lat_h = fit_images.latents.get(key), held_images.latents.get(key)
            if name not in readouts or lat_f is None or lat_f.dim() != 3 or not lat_f.shape[-1]:
                out[name] = math.nan
                continue
            scores = [_fit_score(xf, as_numpy(lat_f[:, u]), xh, as_numpy(lat_h[:, u]), False, seed)[0]
                      for u in range(lat_f.shape[1])]  # fmt: skip
            out[name] = float(np.mean(scores))
    return out
