"""A sweep run's `results.json`: the standard evaluations (`maelab.evaluation.results`) plus the
readouts that sit above evaluation: identifiability R^2 per latent level (`maelab.probes`, on
the synthetic dataset) and, with `eval.study`, the study's selectivity readouts, the same seed's
untrained network scored like the run, and the learning curve.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from maelab import metric_names as m
from maelab.config import Config
from maelab.data.base import ImageSet, Splits
from maelab.engine.build import build_model_for
from maelab.evaluation.baselines import random_encoder
from maelab.evaluation.results import (
    EvalConfig,
    collapse_metrics,
    evaluate_model,
    evaluate_pixels,
    training_metrics,
    write_baselines,
    write_results,
)
from maelab.evaluation.splits import cached_splits
from maelab.experiments.study_readout import (
    curve_row,
    learning_curve,
    principal_k,
    study_metrics,
)
from maelab.models.checkpoints import load_pretrained
from maelab.models.mae import MaskedAutoencoder
from maelab.probes.identifiability import identifiability, pixel_identifiability
from maelab.recipes import apply_recipe
from maelab.run_folder import RunFolder
from maelab.run_records import PIXELS, RANDOM_INIT, RunResults


def identifiability_metrics(
    model: MaskedAutoencoder | None, splits: Splits, patch_size: int, cfg: EvalConfig, seed: int = 0
) -> dict[str, float]:
    """`r2.<level>` (ridge, held out) per synthetic latent level; {} for data without latents.

    `model=None` probes the raw pixels (patches as tokens).
    """
    train, test = splits.train, splits.test
    if not (isinstance(train, ImageSet) and isinstance(test, ImageSet) and train.latents):
        return {}
    kw = dict(fit_images=train, max_images=cfg.id_max_images, kernel=cfg.id_kernel, seed=seed)
    if model is None:
        res = pixel_identifiability(test, patch_size, label="pixels", **kw)
    else:
        res = identifiability(model, test, label="model", **kw)
    out = {}
    for level, value in res.summary().items():
        if not (level.endswith("_kernel") and math.isnan(value)):
            out[m.identifiability(level)] = value
    return out


def model_metrics(
    model: MaskedAutoencoder, cfg: Config, splits: Splits, eval_cfg: EvalConfig
) -> tuple[dict[str, float], list[float]]:
    """Every standard number of one encoder (flat dict of floats) and its covariance spectrum."""
    metrics, spectrum = evaluate_model(model, cfg, splits, eval_cfg)
    if eval_cfg.identifiability:
        metrics.update(
            identifiability_metrics(model, splits, model.patch_size, eval_cfg, cfg.train.seed)
        )
    return metrics, spectrum


def evaluate_run(run_dir: str | Path, eval_cfg: EvalConfig | None = None) -> RunResults:
    """Evaluate `RUN/checkpoints/last.pt` and write `RUN/results.json`; returns its content."""
    eval_cfg = eval_cfg or EvalConfig()
    folder = RunFolder(run_dir)
    t0 = time.time()
    model, cfg = load_pretrained(folder.last_checkpoint)
    splits = cached_splits(cfg.data)
    metrics, spectrum = model_metrics(model, cfg, splits, eval_cfg)
    curve: list[dict[str, Any]] = []
    if eval_cfg.study:
        metrics.update(
            study_metrics(model, cfg, splits, eval_cfg.study_images, eval_cfg.study_kernel)
        )
        # the untrained network this run started from, scored by the same evaluations
        rand, _ = evaluate_model(random_encoder(model.arch, cfg.train.seed), cfg, splits, eval_cfg)
        metrics.update({m.of_random(k): v for k, v in rand.items()})
        # the placebo of rows that are already trained - untrained: seed s + 100's untrained
        # network against seed s's
        other = random_encoder(model.arch, cfg.train.seed + m.OTHER_SEED)
        collapse, _ = collapse_metrics(other, cfg, splits, eval_cfg)
        metrics.update({m.of_other_random(k): v for k, v in collapse.items()})
        per_epoch = max(1, len(splits.train) // cfg.train.batch_size)
        read = m.held_rank(m.ENCODER) in metrics  # the study readouts ran (data with latents)
        curve = learning_curve(
            folder.root, splits, per_epoch, eval_cfg.study_images, cfg.train.seed,
            principal_k(cfg), curve_row(metrics) if read else None,
        )  # fmt: skip
        if read and curve:  # step 0: the untrained network the run started from
            curve.insert(0, {"step": 0, **curve_row(metrics, m.RANDOM)})
    metrics.update(training_metrics(folder))
    return write_results(folder, metrics, spectrum, curve, eval_cfg, t0)


def evaluate_baselines(
    cfg: Config, out_dir: str | Path, eval_cfg: EvalConfig | None = None
) -> dict[str, dict[str, Any]]:
    """Random-init encoder (built as pretraining with `cfg` would start) and raw pixels, scored
    like a run; metrics and spectra are written to `out_dir/results.json`."""
    eval_cfg = eval_cfg or EvalConfig()
    splits = cached_splits(cfg.data)
    cfg, _ = apply_recipe(cfg, splits)  # the architecture the runs' recipe gives them
    model = random_encoder(build_model_for(cfg, splits).arch, cfg.train.seed)
    rand = model_metrics(model, cfg, splits, eval_cfg)
    pix, pix_spectrum = evaluate_pixels(cfg, splits, eval_cfg)
    if eval_cfg.identifiability:
        pix.update(identifiability_metrics(None, splits, model.patch_size, eval_cfg))
    scored = {RANDOM_INIT: rand, PIXELS: (pix, pix_spectrum)}
    return write_baselines(out_dir, scored, cfg.data.name, eval_cfg)
