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
from maelab.data.synthetic import grid_sizes, latent_dims, synthetic_layout
from maelab.evaluation.baselines import random_encoder
from maelab.evaluation.features import Features, pixel_token_features, token_features
from maelab.masking import Mask, MaskGeometry, draw_mask
from maelab.metrics import effective_rank
from maelab.models.checkpoints import load_pretrained
from maelab.models.mae import MaskedAutoencoder
from maelab.probes.inputs import take
from maelab.probes.selectivity import Readout, principal_views, selectivity
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
    return out


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
