"""Identifiability of the synthetic latents from frozen features (Kong et al. 2023).

Held-out R^2 of ridge (RidgeCV) and kernel-ridge (RBF, Nystroem features + RidgeCV) regressions
from frozen features to each level of the synthetic hierarchy:

* ``global`` (z_g), ``class`` (held-out accuracy of a logistic regression, linear only) and
  ``control`` (a latent independent of the image, which must read ~0) from pooled features;
* ``region`` (z_r) and ``region_noise`` (e_r) from the tokens of the region's own patches, one
  regression per region position, R^2 averaged over positions;
* ``cell`` (z_c) and ``cell_noise`` (e_c) from the token(s) of the cell's own patch(es), one
  regression per cell position.

Probing all positions' sources at once from one pooled vector reads ~0 for every model (hundreds
of targets from a few hundred dimensions), hence the per-position regressions. Features are
standardised with the statistics of the fit set; targets are fitted on one set of images and
scored on another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from maelab.data.base import ImageSet
from maelab.evaluation.features import Features, pixel_token_features, token_features
from maelab.models.mae import MaskedAutoencoder
from maelab.probes.inputs import holdout_split, take, unit_patches
from maelab.probes.ridge import r2, ridge_loo

LEVELS = ("class", "global", "region", "region_noise", "cell", "cell_noise", "control")


@dataclass(frozen=True)
class LevelScore:
    """Held-out score of one latent level from one kind of feature."""

    level: str  # one of LEVELS
    feature: str  # "cls", "mean", "pixels", "region tokens" or "cell tokens"
    metric: str  # "r2" (regression) or "accuracy" (class)
    linear: float  # ridge R^2, or logistic-regression accuracy for "class"
    kernel: float  # RBF kernel ridge R^2; nan when off and for "class"


@dataclass
class IdentifiabilityResult:
    label: str
    scores: list[LevelScore]
    num_fit: int
    num_held_out: int
    settings: dict[str, object] = field(default_factory=dict)

    def levels(self) -> list[str]:
        return [lv for lv in LEVELS if any(s.level == lv for s in self.scores)]

    def best(self, level: str, kind: str = "linear") -> float:
        """Best score of a level over the features that probed it (``kind``: linear / kernel)."""
        values = [getattr(s, kind) for s in self.scores if s.level == level]
        values = [v for v in values if not math.isnan(v)]
        if not values:
            return math.nan
        return max(values)

    def summary(self) -> dict[str, float]:
        """``{level: best linear score, level + "_kernel": best kernel score}``."""
        out: dict[str, float] = {}
        for lv in self.levels():
            out[lv] = self.best(lv, "linear")
            out[f"{lv}_kernel"] = self.best(lv, "kernel")
        return out


# ---------------------------------------------------------------- regressions
def standardise(fit: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scaler = StandardScaler().fit(fit)
    return scaler.transform(fit), scaler.transform(held)


def _ridge(xf: np.ndarray, yf: np.ndarray, xh: np.ndarray) -> np.ndarray:
    return ridge_loo(xf, yf).predict(xh)


def rbf_kernel(x: np.ndarray, y: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(-gamma ||x_i - y_j||^2)``: (n, d), (m, d) -> (n, m)."""
    sq = (x**2).sum(1)[:, None] + (y**2).sum(1)[None, :] - 2.0 * x @ y.T
    return np.exp(-gamma * np.maximum(sq, 0.0))


def nystroem_features(
    xf: np.ndarray, xh: np.ndarray, gamma: float, components: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Nystroem approximation of the RBF kernel (Williams & Seeger 2001): features
    ``phi(x) = K(x, C) K(C, C)^{-1/2}`` on ``components`` fit rows C drawn at random, so that
    ``phi(x) . phi(y)`` approximates ``K(x, y)`` (exact when C holds every fit row)."""
    rng = np.random.default_rng(seed)
    m = min(components, xf.shape[0])
    centres = xf[np.sort(rng.choice(xf.shape[0], m, replace=False))]
    lam, vec = np.linalg.eigh(rbf_kernel(centres, centres, gamma))
    keep = lam > 1e-10 * lam[-1]
    norm = vec[:, keep] / np.sqrt(lam[keep])  # (m, r)
    return rbf_kernel(xf, centres, gamma) @ norm, rbf_kernel(xh, centres, gamma) @ norm


def kernel_maps(
    xf: np.ndarray, xh: np.ndarray, gamma_scales: tuple[float, ...], components: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Nystroem RBF features of fit and held-out rows, one pair per ``gamma = scale / d``
    (standardised features: ``scale = 1`` puts a typical squared distance at ``exp(-2)``)."""
    d = xf.shape[1]
    return [nystroem_features(xf, xh, scale / d, components, seed) for scale in gamma_scales]


def kernel_ridge(
    maps: list[tuple[np.ndarray, np.ndarray]], yf: np.ndarray
) -> tuple[np.ndarray, int]:
    """Prediction of the gamma (and per-target alpha) with the best leave-one-out error."""
    best, best_score, best_i = None, -math.inf, 0
    for i, (kf, kh) in enumerate(maps):
        fit = ridge_loo(kf, yf)
        score = -float(np.mean(fit.loo_mse))
        if score > best_score:
            best, best_score, best_i = fit.predict(kh), score, i
    assert best is not None
    return best, best_i


def _accuracy(xf: np.ndarray, yf: np.ndarray, xh: np.ndarray, yh: np.ndarray) -> float:
    if len(np.unique(yf)) < 2:
        return math.nan
    clf = LogisticRegression(max_iter=1000).fit(xf, yf)
    return float((clf.predict(xh) == yh).mean())


def as_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()


def _side(count: int, what: str) -> int:
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"{count} {what} do not form a square grid")
    return side


def identifiability_from_features(
    fit: Features,
    fit_images: ImageSet,
    held: Features,
    held_images: ImageSet,
    label: str = "model",
    kernel: bool = True,
    gamma_scales: tuple[float, ...] = (0.5, 2.0),
    nystroem_components: int = 256,
    seed: int = 0,
) -> IdentifiabilityResult:
    """Scores of every latent level from precomputed features (see the module docstring).

    ``fit_images`` / ``held_images`` supply the ground truth (``latents`` of a synthetic set and
    ``labels``) of the images the features were computed on, in the same order.
    """
    # many small dense problems: one BLAS thread is fastest and immune to a busy machine
    with threadpool_limits(1, user_api="blas"):
        return _identifiability(
            fit,
            fit_images,
            held,
            held_images,
            label,
            kernel,
            gamma_scales,
            nystroem_components,
            seed,
        )


def _identifiability(
    fit: Features,
    fit_images: ImageSet,
    held: Features,
    held_images: ImageSet,
    label: str,
    kernel: bool,
    gamma_scales: tuple[float, ...],
    nystroem_components: int,
    seed: int,
) -> IdentifiabilityResult:
    lat_f, lat_h = fit_images.latents, held_images.latents
    missing = {"global", "region", "cell", "control"} - set(lat_f)
    if missing:
        raise ValueError(
            f"identifiability needs the synthetic dataset's latents; missing: {sorted(missing)}"
        )
    if fit.tokens.shape[0] != len(fit_images) or held.tokens.shape[0] != len(held_images):
        raise ValueError("features and images differ in number")
    scores: list[LevelScore] = []
    nan = math.nan

    def regress(
        xf: np.ndarray, xh: np.ndarray, yf: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        xf, xh = standardise(xf, xh)
        lin = _ridge(xf, yf, xh)
        if not kernel:
            return lin, None
        maps = kernel_maps(xf, xh, gamma_scales, nystroem_components, seed)
        ker, _ = kernel_ridge(maps, yf)
        return lin, ker

    # pooled features -> class, global, control
    yg_f = np.concatenate([as_numpy(lat_f["global"]), as_numpy(lat_f["control"])], axis=1)
    yg_h = np.concatenate([as_numpy(lat_h["global"]), as_numpy(lat_h["control"])], axis=1)
    g = lat_f["global"].shape[1]
    for name in fit.pooled:
        xf, xh = standardise(as_numpy(fit.pooled[name]), as_numpy(held.pooled[name]))
        lin = _ridge(xf, yg_f, xh)
        ker = None
        if kernel:
            maps = kernel_maps(xf, xh, gamma_scales, nystroem_components, seed)
            ker, _ = kernel_ridge(maps, yg_f)
        labels_f, labels_h = fit_images.labels.numpy(), held_images.labels.numpy()
        acc = _accuracy(xf, labels_f, xh, labels_h)
        scores.append(LevelScore("class", name, "accuracy", acc, nan))
        for level, cols in (("global", slice(0, g)), ("control", slice(g, None))):
            k = r2(yg_h[:, cols], ker[:, cols]) if ker is not None else nan
            scores.append(LevelScore(level, name, "r2", r2(yg_h[:, cols], lin[:, cols]), k))

    # per-position tokens -> region / cell latents and their own noise
    size, p = fit.image_size, fit.patch_size
    for unit_level, noise_level, feature in (
        ("region", "region_noise", "region tokens"),
        ("cell", "cell_noise", "cell tokens"),
    ):
        units = lat_f[unit_level].shape[1]
        unit_px = size // _side(units, f"{unit_level}s")
        groups = unit_patches(size, unit_px, p)
        has_noise = noise_level in lat_f and lat_f[noise_level].shape[-1] > 0
        sums = {unit_level: [0.0, 0.0], noise_level: [0.0, 0.0]}
        for u, patches in enumerate(groups):
            xf = as_numpy(fit.tokens[:, patches].reshape(len(fit_images), -1))
            xh = as_numpy(held.tokens[:, patches].reshape(len(held_images), -1))
            parts_f, parts_h = (
                [as_numpy(lat_f[unit_level][:, u])],
                [as_numpy(lat_h[unit_level][:, u])],
            )
            if has_noise:
                parts_f.append(as_numpy(lat_f[noise_level][:, u]))
                parts_h.append(as_numpy(lat_h[noise_level][:, u]))
            yf, yh = np.concatenate(parts_f, axis=1), np.concatenate(parts_h, axis=1)
            d = parts_f[0].shape[1]
            lin, ker = regress(xf, xh, yf)
            for level, cols in ((unit_level, slice(0, d)), (noise_level, slice(d, None))):
                if level == noise_level and not has_noise:
                    continue
                sums[level][0] += r2(yh[:, cols], lin[:, cols])
                sums[level][1] += r2(yh[:, cols], ker[:, cols]) if ker is not None else nan
        for level in (unit_level, noise_level):
            if level == noise_level and not has_noise:
                continue
            lin_mean, ker_mean = (v / len(groups) for v in sums[level])
            scores.append(LevelScore(level, feature, "r2", lin_mean, ker_mean))

    order = {lv: i for i, lv in enumerate(LEVELS)}
    scores.sort(key=lambda s: order[s.level])
    settings = {
        "kernel": "rbf-nystroem" if kernel else "off",
        "gamma_scales": list(gamma_scales),
        "nystroem_components": nystroem_components,
        "patch_size": p,
    }
    return IdentifiabilityResult(label, scores, len(fit_images), len(held_images), settings)


def _fit_and_held(
    images: ImageSet, fit_images: ImageSet | None, max_images: int | None
) -> tuple[ImageSet, ImageSet]:
    if fit_images is None:
        pool = take(images, None if max_images is None else 2 * max_images)
        return holdout_split(pool)
    return take(fit_images, max_images), take(images, max_images)


def identifiability(
    model: MaskedAutoencoder,
    images: ImageSet,
    fit_images: ImageSet | None = None,
    label: str = "model",
    max_images: int | None = 512,
    layer: int | None = None,
    kernel: bool = True,
    seed: int = 0,
) -> IdentifiabilityResult:
    """Held-out R^2 per latent level from the frozen encoder of ``model``.

    Probes are fitted on ``fit_images`` (e.g. the training split) and scored on ``images``; with
    ``fit_images=None`` the first half of ``images`` fits and the second half is held out.
    ``max_images`` caps each part; ``layer`` probes a block's output instead of the final norm.
    """
    fit_set, held_set = _fit_and_held(images, fit_images, max_images)
    return identifiability_from_features(
        token_features(model, fit_set, layer=layer),
        fit_set,
        token_features(model, held_set, layer=layer),
        held_set,
        label=label,
        kernel=kernel,
        seed=seed,
    )


def pixel_identifiability(
    images: ImageSet,
    patch_size: int,
    fit_images: ImageSet | None = None,
    label: str = "pixels",
    max_images: int | None = 512,
    kernel: bool = True,
    seed: int = 0,
) -> IdentifiabilityResult:
    """The raw-pixel baseline: the same probes with pixels as features (patches as tokens,
    the whole image as the pooled feature)."""
    fit_set, held_set = _fit_and_held(images, fit_images, max_images)
    return identifiability_from_features(
        pixel_token_features(fit_set, patch_size),
        fit_set,
        pixel_token_features(held_set, patch_size),
        held_set,
        label=label,
        kernel=kernel,
        seed=seed,
    )
