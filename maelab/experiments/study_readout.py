"""The study's readouts of one pretrained run: selectivity (maelab.probes.selectivity) of the
trained encoder, the same seed's random encoder and raw pixels, on the full image and under the
run's training mask; the latents that mask shares (the derived prediction); and the regime
metric over the run's numbered checkpoints (its learning curve).

The keys of the flat metrics dict are built by `maelab.metric_names`: selectivity
``sel.<view>.<source>.<readout>`` (linear ridge; ``selk.`` Nystroem-RBF ridge when asked;
``selp.`` the full view projected on its top principal directions, `principal_k`) and
``shared.<level>``, the share of nodes of a level that the mask leaves shared.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from maelab import metric_names as m
from maelab.config import Config, MaskConfig
from maelab.data.base import ImageSet, Splits
from maelab.data.redraw import redraw_latent
from maelab.data.synthetic import grid_sizes, latent_dims, synthetic_layout
from maelab.evaluation.baselines import random_encoder
from maelab.evaluation.features import (
    Features,
    code_features,
    pixel_token_features,
    token_features,
)
from maelab.experiments.declaration import R2
from maelab.masking import Mask, MaskGeometry, draw_mask
from maelab.metrics import effective_rank
from maelab.models.checkpoints import load_pretrained
from maelab.models.mae import MaskedAutoencoder
from maelab.probes.inputs import take
from maelab.probes.selectivity import Readout, code_selectivity, principal_views, selectivity
from maelab.run_folder import RunFolder
from maelab.theory.shared_latents import shared_latents

CURVE_READOUTS = (m.Z_G, m.S_G, m.E_R)  # the regime readouts followed over training
MASK_STREAM = 7  # generator offset of the readout masks, apart from training's streams


def readout_masks(
    mask: MaskConfig, model: MaskedAutoencoder, n_fit: int, n_held: int, seed: int
) -> tuple[Mask, Mask]:
    """Masks of the fit and held-out images, drawn as training draws them (the run's ratio,
    strategy and unit), fixed per seed."""
    geom = MaskGeometry(model.arch.grid_size, model.patch_size)
    g = torch.Generator().manual_seed(1000 * seed + MASK_STREAM)
    return draw_mask(mask, n_fit, geom, g), draw_mask(mask, n_held, geom, g)


def shared_fractions(cfg: Config, patch_size: int, mask: Mask) -> dict[str, float]:
    """The share of each level's nodes that `mask` leaves shared
    (`maelab.theory.shared_latents`): the derived prediction of Kong et al. for this condition."""
    layout = synthetic_layout(cfg.data.synthetic, patch_size)
    shared = shared_latents(mask.removed, layout["patch_region"], layout["patch_cell"])
    return shared.fractions()


def _record(out: dict[str, float], view: str, source: str, res: Readout, kernel: bool) -> None:
    for name, value in res.linear.items():
        out[m.selectivity(name, source, view)] = value
    if kernel:
        for name, value in res.kernel.items():
            out[m.selectivity(name, source, view, m.KERNEL_PROBE)] = value


def study_metrics(
    model: MaskedAutoencoder,
    cfg: Config,
    splits: Splits,
    images: int = 512,
    kernel: bool = False,
) -> dict[str, float]:
    """Selectivity of encoder / random / pixels, full and masked, and the shared fractions."""
    train, test = splits.train, splits.test
    if not (isinstance(train, ImageSet) and isinstance(test, ImageSet) and train.latents):
        return {}
    seed = cfg.train.seed
    fit, held = take(train, images), take(test, images)
    mf, mh = readout_masks(cfg.mask, model, len(fit), len(held), seed)
    out: dict[str, float] = {
        m.shared(k): v for k, v in shared_fractions(cfg, model.patch_size, mf).items()
    }
    views: dict[tuple[str, str], tuple[Features, Features]] = {}  # (view, source) ->
    for source, net in ((m.ENCODER, model), (m.RANDOM, random_encoder(model.arch, seed))):
        views[(m.FULL, source)] = (token_features(net, fit), token_features(net, held))
        views[(m.MASKED, source)] = (token_features(net, fit, mf), token_features(net, held, mh))
    p = model.patch_size
    views[(m.FULL, m.PIXELS)] = (pixel_token_features(fit, p), pixel_token_features(held, p))
    views[(m.MASKED, m.PIXELS)] = (
        pixel_token_features(fit, p, mf.visible),
        pixel_token_features(held, p, mh.visible),
    )
    for (view, source), (vfit, vheld) in views.items():
        _record(out, view, source, selectivity(vfit, fit, vheld, held, kernel, seed), kernel)
    k = principal_k(cfg)
    for source in (m.ENCODER, m.RANDOM, m.PIXELS):
        pf, ph = principal_views(*views[(m.FULL, source)], k)
        for name, value in selectivity(pf, fit, ph, held, seed=seed).linear.items():
            out[m.selectivity(name, source, probe=m.PRINCIPAL_PROBE)] = value
    for source in (m.ENCODER, m.RANDOM):
        out[m.held_rank(source)] = effective_rank(views[(m.FULL, source)][1].x)
    pf, ph = pixel_pca_views(fit, held, k)
    for name, value in selectivity(
        pf, fit, ph, held, seed=seed, readouts=(m.Z_G, m.S_G)
    ).linear.items():
        if not math.isnan(value):
            out[m.selectivity(name, m.PCA, probe=m.PRINCIPAL_PROBE)] = value
    out[m.LATENT_RANK] = effective_rank(latent_vectors(held))
    out.update(positive_controls(model, cfg, fit, held, (mf, mh), out, k))
    if model.arch.code_dim:
        out.update(code_metrics(model, cfg, fit, held, (mf, mh)))
    return out


def code_metrics(
    model: MaskedAutoencoder, cfg: Config, fit: ImageSet, held: ImageSet, masks: tuple[Mask, Mask]
) -> dict[str, float]:
    """Kong et al.'s readout of a `model.code_dim` model: R^2 of each latent from the k-wide code
    of the visible part under the training mask (`sel.code.<source>.<readout>`), for the trained
    model and the same seed's untrained one; e_r's positive control (`pc.sel.code.encoder.e_r`)
    on images whose e_r is redrawn in a share of them."""
    seed = cfg.train.seed
    mf, mh = masks
    out: dict[str, float] = {}
    for source, net in ((m.ENCODER, model), (m.RANDOM, random_encoder(model.arch, seed))):
        res = code_selectivity(code_features(net, fit, mf), fit, code_features(net, held, mh),
                               held, seed)  # fmt: skip
        out.update({m.selectivity(r, source, m.CODE): v for r, v in res.items()})
    key = m.selectivity(m.E_R, m.ENCODER, m.CODE)
    r2 = out.get(key, math.nan)
    if not math.isnan(r2):
        fit2, held2 = redrawn(fit, held, cfg, "region_noise", r2, len(POSITIVE_READOUTS))
        res = code_selectivity(code_features(model, fit2, mf), fit, code_features(model, held2, mh),
                               held, seed, readouts=(m.E_R,))  # fmt: skip
        out[m.positive_control(key)] = res[m.E_R] - r2
    return out


# (latent, readout, view, probe): the selectivity readouts the study's rows compare, each with
# a positive control
POSITIVE_READOUTS = (
    ("region_noise", m.E_R, m.FULL, m.LINEAR_PROBE),
    ("region_noise", m.E_R, m.MASKED, m.LINEAR_PROBE),
    ("region_noise", m.E_R, m.FULL, m.PRINCIPAL_PROBE),
    ("cell_noise", m.E_C, m.FULL, m.LINEAR_PROBE),
    ("cell_noise", m.E_C, m.FULL, m.PRINCIPAL_PROBE),
    ("global", m.Z_G, m.FULL, m.LINEAR_PROBE),
)
POSITIVE_STREAM = 11  # generator offset of the positive controls' redraws
POSITIVE_EFFECT = 1.5  # the constructed drop, in margins of the readout (R^2: 0.02)


def redrawn(fit: ImageSet, held: ImageSet, cfg: Config, level: str, r2: float, stream: int
            ) -> tuple[ImageSet, ImageSet]:  # fmt: skip
    """Both image sets with `level` redrawn in the share that lowers a readout of R^2 `r2` by
    `POSITIVE_EFFECT` margins (`redraw_share`); the generator is fixed per seed and `stream`."""
    q = redraw_share(r2, POSITIVE_EFFECT * R2.value)
    g = torch.Generator().manual_seed(1000 * cfg.train.seed + POSITIVE_STREAM + stream)
    return (redraw_latent(fit, cfg.data.synthetic, level, q, g),
            redraw_latent(held, cfg.data.synthetic, level, q, g))  # fmt: skip


def redraw_share(r2: float, drop: float) -> float:
    """The share of images whose latent is redrawn so that a readout of R^2 `r2` loses `drop`:
    r2 (1 - (1 - q)^2) = drop (all of it when r2 <= drop)."""
    if not r2 > drop:
        return 1.0
    return 1.0 - math.sqrt(1.0 - drop / r2)


def positive_controls(
    model: MaskedAutoencoder,
    cfg: Config,
    fit: ImageSet,
    held: ImageSet,
    masks: tuple[Mask, Mask],
    read: dict[str, float],
    k: int,
) -> dict[str, float]:
    """`pc.<key>` per readout of `POSITIVE_READOUTS`: the run's own encoder on the same images
    with the readout's latent redrawn in a share of them (`redraw_latent`), chosen so that the
    readout's R^2 falls by 1.5 x its margin (population, linear readout), minus the readout
    itself. The same masks, probe and seed; what a row's readout shows of a known drop."""
    out: dict[str, float] = {}
    seed = cfg.train.seed
    for i, (level, readout, view, probe) in enumerate(POSITIVE_READOUTS):
        key = m.selectivity(readout, m.ENCODER, view, probe)
        r2 = read.get(key, math.nan)
        if math.isnan(r2) or level not in fit.latents:
            continue
        fit2, held2 = redrawn(fit, held, cfg, level, r2, i)
        mf, mh = masks if view == m.MASKED else (None, None)
        vf, vh = token_features(model, fit2, mf), token_features(model, held2, mh)
        if probe == m.PRINCIPAL_PROBE:
            vf, vh = principal_views(vf, vh, k)
        res = selectivity(vf, fit, vh, held, seed=seed, readouts=(readout,))
        out[m.positive_control(key)] = res.linear[readout] - r2
    return out


def pixel_pca_views(fit: ImageSet, held: ImageSet, k: int) -> tuple[Features, Features]:
    """The whole image's top-`k` principal components of standardised pixels (basis from the fit
    images): a pixel baseline as wide as the gate's encoder feature."""
    xf = pixel_token_features(fit, _whole(fit)).x.double()
    xh = pixel_token_features(held, _whole(held)).x.double()
    mean = xf.mean(dim=0)
    basis = torch.linalg.svd(xf - mean, full_matrices=False)[2][:k].T
    pf, ph = ((xf - mean) @ basis).float(), ((xh - mean) @ basis).float()
    return Features({m.PIXELS: pf}, m.PIXELS), Features({m.PIXELS: ph}, m.PIXELS)


def _whole(images: ImageSet) -> int:
    return int(images.images.shape[-1])


def latent_vectors(images: ImageSet) -> torch.Tensor:
    """(N, D) every independent source latent of each image side by side: z_g, each region's
    e_r, each cell's e_c (the world's latent dimension, not collapsed by construction)."""
    parts = [images.latents[k].flatten(1) for k in ("global", "region_noise", "cell_noise")
             if k in images.latents]  # fmt: skip
    return torch.cat(parts, dim=1)


def curve_row(metrics: dict[str, float], source: str = m.ENCODER) -> dict[str, float]:
    """A learning-curve row taken from `study_metrics` instead of encoding the same images
    again: `encoder` is the final checkpoint, `random` the same seed's untrained network (step 0
    of the run: its initial weights)."""
    row = {r: metrics[m.selectivity(r, source)] for r in CURVE_READOUTS}
    row = {r: v for r, v in row.items() if not math.isnan(v)}
    row[m.EFFECTIVE_RANK] = metrics[m.held_rank(source)]
    row[m.S_G_TOPK] = metrics[m.selectivity(m.S_G, source, probe=m.PRINCIPAL_PROBE)]
    return row


def principal_k(cfg: Config) -> int:
    """Directions kept by the principal readout (`selp.`): the width of one cell's latent z_c,
    the degrees of freedom a single token's pixels carry; fixed before any run was read."""
    return latent_dims(cfg.data.synthetic)["cell"]


def checkpoint_step(path: Path, steps_per_epoch: int) -> int:
    """Training step of a numbered checkpoint `epoch_0003.pt` (3 epochs done)."""
    found = re.search(r"epoch_(\d+)", path.name)
    return int(found.group(1)) * steps_per_epoch if found else -1


def learning_curve(
    run_dir: str | Path,
    splits: Splits,
    steps_per_epoch: int,
    images: int = 512,
    seed: int = 0,
    k: int | None = None,
    final: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The readouts (full view, linear) and the effective rank of the pooled held-out features
    of every numbered checkpoint of a run and of its final one, by step; with `k` also the
    regime gate's ``s_g_topk`` (s_g on the top-k principal directions). `final`: the final
    checkpoint's row when already read (`curve_row`), so that it is not encoded again."""
    train, test = splits.train, splits.test
    if not (isinstance(train, ImageSet) and isinstance(test, ImageSet) and train.latents):
        return []
    fit, held = take(train, images), take(test, images)
    curve = []
    folder = RunFolder(run_dir)
    points = [
        (checkpoint_step(p, steps_per_epoch), p) for p in folder.checkpoints.glob("epoch_*.pt")
    ]
    final_step = folder.latest_step()
    if folder.last_checkpoint.is_file() and final_step > max((s for s, _ in points), default=-1):
        points.append((final_step, folder.last_checkpoint))  # the curve ends where training did
    for step, path in sorted(points):
        if final is not None and step == final_step:  # the weights study_metrics read
            curve.append({"step": step, **final})
            continue
        net, _ = load_pretrained(path)
        vf, vh = token_features(net, fit), token_features(net, held)
        res = selectivity(vf, fit, vh, held, seed=seed, readouts=CURVE_READOUTS)
        row: dict[str, Any] = {"step": step}
        row.update({r: res.linear[r] for r in CURVE_READOUTS if not math.isnan(res.linear[r])})
        row[m.EFFECTIVE_RANK] = effective_rank(vh.x)  # Zhang et al.: collapse over training
        if k is not None:
            pf, ph = principal_views(vf, vh, k)
            row[m.S_G_TOPK] = selectivity(pf, fit, ph, held, seed=seed, readouts=(m.S_G,)).linear[
                m.S_G
            ]
        curve.append(row)
    return curve


def latent_dimension(cfg: Config) -> int:
    """Independent latent coordinates of one image of the synthetic world: z_g, every region's
    e_r and every cell's e_c (the control latent does not enter the image)."""
    sc = cfg.data.synthetic
    cells, regions = grid_sizes(sc)
    return sc.global_dim + regions**2 * sc.region_noise_dim + cells**2 * sc.cell_noise_dim
