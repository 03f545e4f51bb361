"""Cao Q5 as an information-controlled experiment: the knock-out against a data-only reference.

The knock-out of maelab.probes.interpolation asks whether removing the k nearest visible patches
hurts a removed target patch more than removing the k farthest (same count, so the change in the
number of visible patches cancels in the paired difference, the *near advantage*). A near
advantage alone does not show a local bias: where near patches share latents with the target
(cells, regions), any good predictor leans on them. So the same knock-outs are applied to a
data-only reference, a ridge regression of the target patch on the visible patches fitted on
held-out images (one regression per visible set and target, the penalty chosen on a validation
split), and the model's near advantage is compared with the reference's.

Each regression is solved from the covariance of all patches, computed once, so a visible set of
K patches costs one K*D system; errors are in the model's target space (norm-pix targets where
the model uses them) and divided by the target's variance across images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from maelab.config import MASK_RATIO, MaskConfig
from maelab.data.base import ImageSet
from maelab.masking import MaskGeometry, mask_from_noise, mask_noise_for, num_keep
from maelab.models.mae import MaskedAutoencoder, patchify
from maelab.probes.activations import patch_errors
from maelab.probes.inputs import (
    eval_mode,
    holdout_split,
    model_device,
    normalised,
    ratio_for_keep,
    take,
)
from maelab.probes.interpolation import knockout_noise
from maelab.probes.questions import QuestionResult

# Q5's margin (docs/theory.md), in units of the target patch's variance: a near advantage of the
# model within 0.02 of the reference's counts as "no local bias beyond the information".
Q5_MARGIN = 0.02
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0)  # ridge penalties, times the mean variance of the inputs
VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class Moments:
    """Means and covariances of flattened patches x (L*D) and targets y (T*D), float64."""

    mean_x: torch.Tensor  # (L*D,)
    mean_y: torch.Tensor  # (T*D,)
    cxx: torch.Tensor  # (L*D, L*D)
    cxy: torch.Tensor  # (L*D, T*D)
    values: int  # D, values per patch


def fit_moments(x: torch.Tensor, y: torch.Tensor) -> Moments:
    """Moments of patches x (N, L, D) and target patches y (N, T, D)."""
    n, _, d = x.shape
    xf, yf = x.reshape(n, -1).double(), y.reshape(n, -1).double()
    mx, my = xf.mean(0), yf.mean(0)
    xc = xf - mx
    return Moments(mx, my, xc.T @ xc / n, xc.T @ (yf - my) / n, d)


def ridge_predict(
    m: Moments, visible: torch.Tensor, target: int, penalty: float, x: torch.Tensor
) -> torch.Tensor:
    """Ridge prediction of target patch ``target`` (an index into y's T patches) from the patches
    ``visible`` (K,) of x (N, L, D): (N, D). ``penalty`` is relative to the mean input variance."""
    d = m.values
    cols = (visible[:, None] * d + torch.arange(d)).reshape(-1)  # (K*D,)
    out = slice(target * d, (target + 1) * d)
    c_vv = m.cxx[cols][:, cols]
    lam = penalty * float(torch.diagonal(c_vv).mean())
    eye = torch.eye(len(cols), dtype=c_vv.dtype)
    chol = torch.linalg.cholesky(c_vv + lam * eye)  # symmetric positive definite once penalised
    w = torch.cholesky_solve(m.cxy[cols, out], chol)  # (K*D, D)
    xv = x.reshape(x.shape[0], -1).double()[:, cols] - m.mean_x[cols]
    return xv @ w + m.mean_y[out]


@dataclass(frozen=True)
class RidgeReference:
    """The data-only reference: moments of the fit images, and of their first part with the rest
    held out to choose the penalty."""

    full: Moments
    part: Moments
    val_x: torch.Tensor  # (V, L, D)
    val_y: torch.Tensor  # (V, T, D)


def fit_reference(fit_x: torch.Tensor, fit_y: torch.Tensor) -> RidgeReference:
    """Moments of the fit patches x (N, L, D) and targets y (N, T, D), all and the first
    ``1 - VALIDATION_SHARE`` (the rest validates the penalty)."""
    cut = int(round(fit_x.shape[0] * (1 - VALIDATION_SHARE)))
    if cut < 2 or fit_x.shape[0] - cut < 2:
        raise ValueError(f"{fit_x.shape[0]} fit images are too few for the ridge reference")
    return RidgeReference(
        full=fit_moments(fit_x, fit_y),
        part=fit_moments(fit_x[:cut], fit_y[:cut]),
        val_x=fit_x[cut:],
        val_y=fit_y[cut:].double(),
    )


def reference_errors(
    ref: RidgeReference, x: torch.Tensor, y: torch.Tensor, sets: list[tuple[torch.Tensor, int]]
) -> torch.Tensor:
    """Squared error per image (len(sets), N) of the ridge reference for each (visible, target)
    pair in ``sets`` on patches x (N, L, D) and targets y (N, T, D). The penalty is chosen once,
    on the first pair's validation error (it is relative to the input variance, so it carries
    over between visible sets of similar size)."""
    v0, t0 = sets[0]

    def val_error(pen: float) -> float:
        guess = ridge_predict(ref.part, v0, t0, pen, ref.val_x)
        return float((guess - ref.val_y[:, t0]).pow(2).mean())

    best = min(PENALTIES, key=val_error)
    out = torch.empty(len(sets), x.shape[0], dtype=torch.float64)
    for i, (visible, target) in enumerate(sets):
        guess = ridge_predict(ref.full, visible, target, best, x)
        out[i] = (guess - y[:, target].double()).pow(2).mean(dim=-1)
    return out


@dataclass
class KnockoutComparison:
    """Errors of the model, of the reference and (where given) of the untrained network on the
    same removed targets, in units of the target's variance: per variant ("base", "near",
    "far") a (configs, N) tensor."""

    model: dict[str, torch.Tensor]
    reference: dict[str, torch.Tensor]
    details: dict[str, float]
    untrained: dict[str, torch.Tensor] | None = None

    def near_advantage(self, who: str) -> torch.Tensor:
        """Per image (N,): error with the nearest knocked out minus with the farthest knocked
        out, averaged over the targets; ``who`` is "model", "reference" or "untrained"."""
        errs = {"model": self.model, "reference": self.reference, "untrained": self.untrained}[who]
        if errs is None:
            raise ValueError("no untrained network was compared")
        return (errs["near"] - errs["far"]).mean(dim=0)

    def excess(self, who: str = "model") -> torch.Tensor:
        """Per image (N,): the near advantage of ``who`` minus the reference's, what it leans on
        its nearest visible patches beyond the information in them."""
        return self.near_advantage(who) - self.near_advantage("reference")


def compare_knockouts(
    model: MaskedAutoencoder,
    images: ImageSet,
    fit_images: ImageSet,
    base_ratio: float,
    num_knocked: int = 4,
    num_masks: int = 4,
    targets_per_mask: int = 4,
    seed: int = 0,
    untrained: MaskedAutoencoder | None = None,
) -> KnockoutComparison:
    """The near / far knock-outs of removed targets for the model (and ``untrained``, on the
    same masks and targets) and for the ridge reference fitted on ``fit_images``: ``num_masks``
    base masks at ``base_ratio`` (the same for every image), ``targets_per_mask`` removed
    targets each, the ``num_knocked`` nearest / farthest visible patches of each target knocked
    out (capped at half the visible patches)."""
    grid, p = model.arch.grid_size, model.patch_size
    num_patches = grid * grid
    keep = num_keep(num_patches, base_ratio)
    k = min(num_knocked, keep // 2)
    if k < 1 or keep == num_patches:
        raise ValueError(f"base_ratio={base_ratio} keeps {keep} of {num_patches} patches")
    g = torch.Generator().manual_seed(seed)
    base = mask_noise_for(MaskConfig(ratio=base_ratio), num_masks, MaskGeometry(grid, p), g)
    removed = mask_from_noise(base, base_ratio).ids_removed  # (M, L - K)
    t = min(targets_per_mask, num_patches - keep)
    pick = torch.rand(removed.shape, generator=g).argsort(dim=1)[:, :t]
    targets = torch.gather(removed, 1, pick).reshape(-1)  # (M*t,): one config per target
    rows = base.repeat_interleave(t, dim=0)
    near, far, near_d, far_d = knockout_noise(rows, targets, k, grid, base_ratio, g)
    after = ratio_for_keep(num_patches, keep - k)
    masks = {
        "base": mask_from_noise(rows, base_ratio),
        "near": mask_from_noise(near, after),
        "far": mask_from_noise(far, after),
    }
    positions = sorted(set(targets.tolist()))
    column = [positions.index(tgt) for tgt in targets.tolist()]
    device = model_device(model)
    imgs, fit_imgs = normalised(images, device), normalised(fit_images, device)
    with eval_mode(model):
        y = model.target(imgs).double().cpu()[:, positions]  # (N, T, D) the model's targets
        fit_y = model.target(fit_imgs).double().cpu()[:, positions]
    scale = float(y.var(dim=0).mean())

    def errors_of(net: MaskedAutoencoder) -> dict[str, torch.Tensor]:
        out = {}
        with eval_mode(net):
            for name, mask in masks.items():
                per_config = []
                for c, tgt in enumerate(targets.tolist()):
                    same = mask.rows(torch.full((imgs.shape[0],), c))  # config c for every image
                    per_config.append(patch_errors(net, imgs, same)[0][:, tgt].double().cpu())
                out[name] = torch.stack(per_config) / scale  # (configs, N)
        return out

    model_err = errors_of(model)
    untrained_err = None if untrained is None else errors_of(untrained)
    x = patchify(imgs, p).cpu()
    ref = fit_reference(patchify(fit_imgs, p).cpu(), fit_y)
    ref_err: dict[str, torch.Tensor] = {}
    for name, mask in masks.items():
        sets = [(mask.ids_keep[c], column[c]) for c in range(len(column))]
        ref_err[name] = reference_errors(ref, x, y, sets) / scale
    details = {
        "num_knocked": float(k),
        "visible": float(keep),
        "near_share": k / keep,
        "num_patches": float(num_patches),
        "near_distance": float(near_d),
        "far_distance": float(far_d),
        "num_configs": float(len(column)),
        "target_variance": scale,
    }
    for who, errs in (("model", model_err), ("reference", ref_err), ("untrained", untrained_err)):
        if errs is None:
            continue
        details[f"{who}_base_error"] = float(errs["base"].mean())
        details[f"{who}_near_increase"] = float((errs["near"] - errs["base"]).mean())
        details[f"{who}_far_increase"] = float((errs["far"] - errs["base"]).mean())
    return KnockoutComparison(model_err, ref_err, details, untrained_err)


Q5_CLAIM = (
    "masked patches are filled by global interpolation: the model's reliance on its nearest "
    "visible patches beyond the information in them is the same with and without regions"
)


def q5_experiment(
    model: MaskedAutoencoder,
    images: ImageSet,
    fit_images: ImageSet | None = None,
    untrained: MaskedAutoencoder | None = None,
    no_regions: tuple[ImageSet, ImageSet] | None = None,
    mask_ratio: float = MASK_RATIO,
    num_knocked: int = 4,
    num_masks: int = 4,
    targets_per_mask: int = 4,
    max_images: int | None = 256,
    max_fit: int | None = 4096,
    seed: int = 0,
) -> QuestionResult:
    """q5_experiment(model, images, fit_images=None, untrained=None, no_regions=None,
    mask_ratio=MASK_RATIO, num_knocked=4, num_masks=4, targets_per_mask=4, max_images=256,
    max_fit=4096, seed=0) -> QuestionResult

    The *effect* on a set of images: per image, the model's near advantage minus the ridge
    reference's (`KnockoutComparison.excess`). With ``no_regions`` (test and fit images of the
    same world without regional sharing, `STUDY_32PX_NO_REGIONS`'s construction; the runner
    builds them), the row's value per image index is the world's effect minus the control
    world's, on the same masks and targets; without it, the world's effect alone. With
    ``untrained`` (the run's start), the same value of the untrained network is the placebo.
    Each effect, with its sign, goes into ``details`` (``world_effect``,
    ``no_regions_effect``, and their ``_untrained``). ``mask_ratio`` is the model's training
    ratio: the base mask keeps ``num_knocked`` patches more, so each knock-out variant shows
    the model as many patches as in training. Needs the decoder."""
    if fit_images is None:
        fit_images, images = holdout_split(images)
    num_patches = model.arch.grid_size**2
    keep = num_keep(num_patches, mask_ratio) + num_knocked
    if keep >= num_patches:
        raise ValueError(
            f"mask_ratio={mask_ratio} keeps {keep - num_knocked} of {num_patches} patches: no "
            f"room for {num_knocked} more visible and a removed target"
        )
    base_ratio = ratio_for_keep(num_patches, keep)

    def compare(test: ImageSet, fit: ImageSet) -> KnockoutComparison:
        return compare_knockouts(model, take(test, max_images), take(fit, max_fit), base_ratio,
                                 num_knocked, num_masks, targets_per_mask, seed, untrained)  # fmt: skip

    world = compare(images, fit_images)
    details = dict(world.details)
    effects = {"world": world}
    if no_regions is not None:
        effects["no_regions"] = compare(*no_regions)
        details.update({f"no_regions_{k}": v for k, v in effects["no_regions"].details.items()})
    n = min(len(c.excess()) for c in effects.values())
    values = {}
    for name, cmp in effects.items():
        for who in ("model", "untrained") if untrained is not None else ("model",):
            suffix = "" if who == "model" else "_untrained"
            values[name + suffix] = cmp.excess(who)[:n]
            details[f"{name}_effect{suffix}"] = float(cmp.excess(who).mean())
    control = "no_regions" in effects

    def row_value(suffix: str) -> torch.Tensor:
        world_value = values["world" + suffix]
        return world_value - values["no_regions" + suffix] if control else world_value

    k = int(world.details["num_knocked"])
    adv_model, adv_ref = world.near_advantage("model"), world.near_advantage("reference")
    return QuestionResult(
        question="Q5",
        claim=Q5_CLAIM,
        manipulation=f"knock out the {k} nearest instead of the {k} farthest visible patches "
        f"(of {keep}) of a removed patch: the model's error increase (near advantage) minus a "
        "ridge reference's on the same visible patches, fitted on other images"
        + (", in the world minus in its no-regions control world" if control else ""),
        control="the reference's near advantage in the world (fit_images)"
        + ("; the row is the world's excess minus the no-regions world's" if control else ""),
        treated=float(adv_model.mean()),
        control_value=float(adv_ref.mean()),
        paired=row_value("").tolist(),
        predicted="none",
        margin=Q5_MARGIN,
        unit="image",
        details=details,
        placebo=None if untrained is None else row_value("_untrained").tolist(),
    )
