"""Cao Q5: masked patches are reconstructed by global interpolation, not from neighbours only.

Two measurements on the decoder:

* attention of masked queries over the patch keys (cls key left out, the rest renormalised):
  the attention-weighted grid distance, and the share of mass on the 8 nearest patches (the
  3x3 neighbourhood without the query itself; fewer at borders), each against what uniform
  attention over all patches would give;
* knock-out: for a removed target patch, the increase of its reconstruction error when its
  ``k`` nearest visible patches are removed too, against removing its ``k`` farthest visible
  patches. Both variants start from the same fixed mask and keep the same number of visible
  patches, so only *which* patches are missing differs. The paired difference near - far is
  the test; each increase on its own also carries the effect of the lower visible count (which
  can be negative when the knocked-out mask is closer to the training ratio than the base).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from maelab.config import MASK_RATIO, MaskConfig
from maelab.data.base import ImageSet
from maelab.masking import MaskGeometry, draw_mask, mask_from_noise, mask_noise_for, num_keep
from maelab.models.mae import MaskedAutoencoder
from maelab.probes.activations import decoder_attention, patch_errors
from maelab.probes.inputs import (
    eval_mode,
    grid_distances,
    model_device,
    normalised,
    ratio_for_keep,
    take,
)

MAX_HISTOGRAM_VALUES = 4096


@dataclass
class AttentionLocality:
    mean_distance: float  # attention-weighted grid distance of masked queries (patch units)
    uniform_distance: float  # the same for uniform attention over all patches
    near_share: float  # attention mass on the 8 nearest patches
    uniform_near_share: float  # the same for uniform attention (|neighbours| / L)
    visible_share: float  # attention mass on visible patches
    uniform_visible_share: float  # visible patches / L
    cls_share: float  # mass on the cls key before it is left out
    layer_distance: list[float]  # per decoder block, mean over heads and masked queries
    layer_near_share: list[float]
    query_distances: list[float]  # per (block, head, image, masked query); for a histogram
    query_uniform_distances: list[float]  # uniform attention's distance for the same queries
    mask_ratio: float


@dataclass
class KnockoutResult:
    num_knocked: int  # k visible patches removed in each variant
    base_error: float  # mean error on the target patches with the base mask
    near_error: float  # ... with the k nearest visible patches removed as well
    far_error: float  # ... with the k farthest visible patches removed as well
    near_increase: float  # mean of (near - base) over targets
    far_increase: float  # mean of (far - base)
    near_increase_se: float  # standard errors of the two means
    far_increase_se: float
    near_minus_far: float  # paired mean of (near - far): > 0 when neighbours matter more
    near_minus_far_se: float
    near_distance: float  # mean grid distance of the knocked-out patches to the target
    far_distance: float
    num_targets: int
    mask_ratio: float  # ratio of the base mask (each variant keeps `num_knocked` patches fewer)


@dataclass
class InterpolationResult:
    attention: AttentionLocality
    knockout: KnockoutResult


def neighbour_mask(grid: int) -> torch.Tensor:
    """(L, L) bool: True where two patches are 8-neighbours (Chebyshev distance 1)."""
    idx = torch.arange(grid)
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    r, c = rows.reshape(-1), cols.reshape(-1)
    cheb = torch.maximum((r[:, None] - r[None, :]).abs(), (c[:, None] - c[None, :]).abs())
    return cheb == 1


def attention_locality(
    attn: torch.Tensor, queries: torch.Tensor, grid: int, visible: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Locality of one attention map over patches.

    ``attn`` (N, H, T, T) with T = L (patches only) or 1 + L (cls first, then the cls key is
    dropped and each row renormalised over the patches); ``queries`` (N, L) selects the query
    patches that count (1 = count); ``visible`` (N, L), 1 for visible patches, is optional.
    Returns, averaged over heads and selected queries: ``distance``, ``near``,
    ``uniform_distance``, ``uniform_near``, ``visible``, ``uniform_visible``, ``cls`` (0-d
    tensors), ``per_query`` (H, M) distances of the M selected queries and ``per_query_uniform``
    (H, M) the distances uniform attention would give them.
    """
    num_patches = grid * grid
    n, heads, t, _ = attn.shape
    attn = attn.double()
    if t == num_patches + 1:
        cls_mass = attn[:, :, 1:, 0]  # (N, H, L)
        probs = attn[:, :, 1:, 1:] / (1.0 - cls_mass).clamp_min(1e-12).unsqueeze(-1)
    elif t == num_patches:
        cls_mass = torch.zeros(n, heads, num_patches, dtype=attn.dtype, device=attn.device)
        probs = attn
    else:
        raise ValueError(f"attention over {t} tokens does not match a {grid}x{grid} grid")
    dist = grid_distances(grid).to(attn.device)  # (L, L)
    near = neighbour_mask(grid).to(attn.device, attn.dtype)
    q = queries.to(attn.device, attn.dtype)  # (N, L)
    if q.sum() == 0:
        raise ValueError("no query patch selected")
    weight = q[:, None, :].expand(n, heads, num_patches)  # (N, H, L)

    def avg(v: torch.Tensor) -> torch.Tensor:  # (N, H, L) -> mean over selected queries
        return (v * weight).sum() / weight.sum()

    per_query = (probs * dist).sum(-1)  # (N, H, L)
    uniform_query = dist.mean(-1).expand(n, heads, -1)  # (N, H, L)
    selected = q.bool()
    out = {
        "distance": avg(per_query),
        "near": avg((probs * near).sum(-1)),
        "uniform_distance": avg(uniform_query),
        "uniform_near": avg((near.sum(-1) / num_patches).expand(n, heads, -1)),
        "cls": avg(cls_mass),
        "per_query": per_query.permute(1, 0, 2)[:, selected],  # (H, M)
        "per_query_uniform": uniform_query.permute(1, 0, 2)[:, selected],
    }
    if visible is not None:
        vis = visible.to(attn.device, attn.dtype)  # (N, L)
        out["visible"] = avg((probs * vis[:, None, None, :]).sum(-1))
        share = vis.sum(-1) / num_patches  # (N,) visible share of uniform attention
        out["uniform_visible"] = avg(share[:, None, None].expand(n, heads, num_patches))
    return out


def decoder_attention_probe(
    model: MaskedAutoencoder,
    images: ImageSet,
    mask_ratio: float = MASK_RATIO,
    max_images: int | None = 128,
    seed: int = 0,
) -> AttentionLocality:
    """Locality of the decoder's attention from masked queries, on a fixed random mask at
    ``mask_ratio``. A model without decoder blocks gets nan values and empty lists."""
    subset = take(images, max_images)
    grid = model.arch.grid_size
    g = torch.Generator().manual_seed(seed)
    geom = MaskGeometry(grid, model.patch_size)
    with eval_mode(model):
        imgs = normalised(subset, model_device(model))
        mask = draw_mask(MaskConfig(ratio=mask_ratio), imgs.shape[0], geom, g).to(imgs.device)
        maps = decoder_attention(model, imgs, mask)
    removed = mask.removed.float()  # (N, L) the masked queries
    stats = [attention_locality(a, removed, grid, visible=1.0 - removed) for a in maps]
    if not stats:
        nan = math.nan
        return AttentionLocality(nan, nan, nan, nan, nan, nan, nan, [], [], [], [], mask_ratio)

    def mean_of(key: str) -> float:
        return float(sum(float(s[key]) for s in stats) / len(stats))

    values = torch.cat([s["per_query"].reshape(-1) for s in stats])
    uniform = torch.cat([s["per_query_uniform"].reshape(-1) for s in stats])
    step = max(1, math.ceil(values.numel() / MAX_HISTOGRAM_VALUES))
    return AttentionLocality(
        mean_distance=mean_of("distance"),
        uniform_distance=mean_of("uniform_distance"),
        near_share=mean_of("near"),
        uniform_near_share=mean_of("uniform_near"),
        visible_share=mean_of("visible"),
        uniform_visible_share=mean_of("uniform_visible"),
        cls_share=mean_of("cls"),
        layer_distance=[float(s["distance"]) for s in stats],
        layer_near_share=[float(s["near"]) for s in stats],
        query_distances=values[::step].tolist(),
        query_uniform_distances=uniform[::step].tolist(),
        mask_ratio=mask_ratio,
    )


def knockout_noise(
    noise: torch.Tensor,
    targets: torch.Tensor,
    num_knocked: int,
    grid: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Knock-out variants of a base mask, one row per (image, target) pair.

    ``noise`` (N, L) fixes the base mask at ``mask_ratio``; ``targets`` (N,) is a removed patch of
    each row. Returns noise for the near variant and for the far variant (the ``num_knocked``
    visible patches nearest to / farthest from the target get a noise above every other, so
    they are removed next), and the mean distance of the knocked patches in each variant.
    Distance ties are broken at random (``generator``), identically for every model.
    """
    n, num_patches = noise.shape
    keep = num_keep(num_patches, mask_ratio)
    if not 1 <= num_knocked < keep:
        raise ValueError(
            f"num_knocked={num_knocked} must be in [1, {keep - 1}] ({keep} visible patches)"
        )
    order = noise.argsort(dim=1)
    visible = torch.zeros(n, num_patches, dtype=torch.bool, device=noise.device)
    visible.scatter_(1, order[:, :keep], True)
    if visible[torch.arange(n), targets].any():
        raise ValueError("every target must be a removed patch of the base mask")
    dist = grid_distances(grid).to(noise.device)[targets]  # (N, L) distance to the target
    jitter = torch.rand(n, num_patches, generator=generator, dtype=torch.float64) * 1e-3
    dist = dist + jitter.to(noise.device)
    high = float(noise.max()) + 1.0
    variants, distances = [], []
    for sign in (1.0, -1.0):  # nearest first, then farthest
        score = torch.where(visible, sign * dist, torch.inf)
        knocked = score.argsort(dim=1)[:, :num_knocked]  # (N, k)
        variants.append(noise.clone().scatter_(1, knocked, high))
        distances.append(torch.gather(dist, 1, knocked).mean())
    return variants[0], variants[1], distances[0], distances[1]


def knockout_base_ratio(num_patches: int, mask_ratio: float, num_knocked: int) -> float:
    """The ratio of a base mask that keeps ``num_knocked`` patches more than ``mask_ratio``: each
    knock-out variant then shows the model as many patches as training at ``mask_ratio`` did."""
    return ratio_for_keep(
        num_patches, min(num_patches, num_keep(num_patches, mask_ratio) + num_knocked)
    )


def knockout_probe(
    model: MaskedAutoencoder,
    images: ImageSet,
    base_ratio: float | None = None,
    num_knocked: int = 4,
    targets_per_image: int = 4,
    max_images: int | None = 128,
    seed: int = 0,
    mask_ratio: float = MASK_RATIO,
) -> KnockoutResult:
    """Error increase on removed target patches when the nearest vs the farthest visible patches
    are removed as well (see the module docstring).

    The base mask is drawn at ``base_ratio``; None: it keeps ``num_knocked`` patches more than
    the training ratio ``mask_ratio`` (`knockout_base_ratio`), so that each variant keeps as
    many as training did (4x4 grid, 0.75: the base keeps 8 patches, each variant 4).
    ``num_knocked`` is capped at half the visible patches so that the near and far sets never
    overlap.
    """
    subset = take(images, max_images)
    grid = model.arch.grid_size
    num_patches = grid * grid
    if base_ratio is None:
        base_ratio = knockout_base_ratio(num_patches, mask_ratio, num_knocked)
    keep = num_keep(num_patches, base_ratio)
    k = min(num_knocked, keep // 2)
    if k < 1 or keep == num_patches:
        raise ValueError(
            f"base_ratio={base_ratio} keeps {keep} of {num_patches} patches: need at least 2 "
            "visible and 1 removed"
        )
    g = torch.Generator().manual_seed(seed)
    geom = MaskGeometry(grid, model.patch_size)
    device = model_device(model)
    imgs = normalised(subset, device)
    n = imgs.shape[0]
    base = mask_noise_for(MaskConfig(ratio=base_ratio), n, geom, g)  # (N, L) on cpu
    removed_order = mask_from_noise(base, base_ratio).ids_removed  # (N, L - K)
    t = min(targets_per_image, num_patches - keep)
    pick = torch.rand(n, removed_order.shape[1], generator=g).argsort(dim=1)[:, :t]
    targets = torch.gather(removed_order, 1, pick).reshape(-1)  # (N * t,)
    rows = torch.arange(n).repeat_interleave(t)
    base_rows = base[rows]
    near, far, near_d, far_d = knockout_noise(base_rows, targets, k, grid, base_ratio, g)
    after = ratio_for_keep(num_patches, keep - k)
    x = imgs[rows.to(device)]
    idx = torch.arange(rows.numel())
    masks = {"base": mask_from_noise(base_rows, base_ratio), "near": mask_from_noise(near, after),
             "far": mask_from_noise(far, after)}  # fmt: skip
    with eval_mode(model):
        e_base, e_near, e_far = (
            patch_errors(model, x, masks[name])[0].cpu()[idx, targets]
            for name in ("base", "near", "far")
        )
    d_near, d_far = (e_near - e_base).double(), (e_far - e_base).double()
    paired = (e_near - e_far).double()
    m = d_near.numel()

    def se(v: torch.Tensor) -> float:
        return float(v.std() / math.sqrt(m)) if m > 1 else math.nan

    return KnockoutResult(
        num_knocked=k,
        base_error=float(e_base.mean()),
        near_error=float(e_near.mean()),
        far_error=float(e_far.mean()),
        near_increase=float(d_near.mean()),
        far_increase=float(d_far.mean()),
        near_increase_se=se(d_near),
        far_increase_se=se(d_far),
        near_minus_far=float(paired.mean()),
        near_minus_far_se=se(paired),
        near_distance=float(near_d),
        far_distance=float(far_d),
        num_targets=m,
        mask_ratio=base_ratio,
    )


def interpolation_probe(
    model: MaskedAutoencoder,
    images: ImageSet,
    mask_ratio: float = MASK_RATIO,
    knockout_ratio: float | None = None,
    num_knocked: int = 4,
    max_images: int | None = 128,
    seed: int = 0,
) -> InterpolationResult:
    """Decoder attention locality (at ``mask_ratio``, the checkpoint's ratio when the runner
    calls it) and the near / far knock-out (from a base mask at ``knockout_ratio``; None: one
    that keeps ``num_knocked`` patches more than ``mask_ratio``)."""
    return InterpolationResult(
        attention=decoder_attention_probe(model, images, mask_ratio, max_images, seed),
        knockout=knockout_probe(model, images, knockout_ratio, num_knocked, max_images=max_images,
                                seed=seed, mask_ratio=mask_ratio),
    )  # fmt: skip
