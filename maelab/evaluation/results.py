"""The standard evaluations of one pretrained run, stored as `results.json` in its folder.

Linear probe and k-NN on frozen pooled features, collapse numbers (effective rank, RankMe,
alignment / uniformity of masked views) and, on the synthetic dataset, identifiability R^2 per
latent level. The same evaluations score two baselines that need no training: a randomly
initialised encoder of the same architecture and the raw pixels.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from maelab.config import Config, Strict
from maelab.data.base import ImageSet, Splits
from maelab.engine.build import build_model_for
from maelab.engine.metrics_log import read_metrics
from maelab.evaluation.baselines import random_encoder
from maelab.evaluation.collapse import encoder_views
from maelab.evaluation.features import Features, encoder_features, pixel_features
from maelab.evaluation.knn import knn_accuracy
from maelab.evaluation.linear_probe import LinearProbeConfig, linear_probe
from maelab.evaluation.splits import cached_splits
from maelab.experiments.study_readout import (
    HELD_RANK,
    curve_row,
    learning_curve,
    principal_k,
    study_metrics,
)
from maelab.metrics import collapse_stats, normalised_alignment
from maelab.models.checkpoints import load_pretrained
from maelab.models.mae import MaskedAutoencoder
from maelab.models.pooling import Pool
from maelab.probes.identifiability import identifiability, pixel_identifiability
from maelab.probes.inputs import take
from maelab.recipes import apply_recipe
from maelab.run_folder import RunFolder, write_json_atomic


class EvalConfig(Strict):
    """Which evaluations a sweep runs after each pretraining run, and their budgets."""

    pool: Pool = "cls"
    linear_probe: LinearProbeConfig = LinearProbeConfig(epochs=30, warmup_epochs=3)
    knn_k: int = 20
    knn_t: float = 0.07
    max_train: int | None = None  # cap on training images for the probes (None: all)
    view_images: int = 1024  # test images for collapse / alignment / uniformity
    identifiability: bool = True  # synthetic data only
    id_max_images: int = 1024
    id_kernel: bool = False  # RBF kernel ridge as well as ridge (slower)
    study: bool = False  # selectivity readouts, the same seed's random encoder, learning curve
    study_images: int = 512  # fit and held-out images of the selectivity readouts (each)
    study_kernel: bool = False  # Nystroem-RBF readouts beside the linear ones (slower)


def _cap(x: Features, n: int | None) -> Features:
    return x if n is None or len(x) <= n else Features(x.x[:n], x.y[:n])


def probe_metrics(
    train: Features, test: Features, num_classes: int, cfg: EvalConfig
) -> dict[str, float]:
    """Linear-probe and k-NN top-1 (percent) of frozen features."""
    train = _cap(train, cfg.max_train)
    lp = linear_probe(train.x, train.y, test.x, test.y, num_classes, cfg.linear_probe)
    knn = knn_accuracy(train.x, train.y, test.x, test.y, num_classes, cfg.knn_k, cfg.knn_t)
    return {"linear_top1": lp.top1, "linear_train_top1": lp.train_top1, "knn_top1": knn.top1}


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
            out[f"r2.{level}"] = value
    return out


def evaluate_model(
    model: MaskedAutoencoder, cfg: Config, splits: Splits, eval_cfg: EvalConfig
) -> tuple[dict[str, float], list[float]]:
    """Every standard number of one encoder (flat dict of floats) and its covariance spectrum."""
    model.eval()
    pool = eval_cfg.pool
    train_split = splits.train
    if eval_cfg.max_train is not None and isinstance(train_split, ImageSet):
        # only the first max_train are probed (`_cap`): encoding the rest would be thrown away
        train_split = take(train_split, eval_cfg.max_train)
    train = encoder_features(model, train_split, pool=pool)
    test = encoder_features(model, splits.test, pool=pool)
    metrics = probe_metrics(train, test, splits.train.num_classes, eval_cfg)
    full, v1, v2 = encoder_views(
        model, splits.test, cfg.mask, eval_cfg.view_images, pool, seed=cfg.train.seed
    )
    stats = collapse_stats(full, v1, v2)
    metrics.update(
        effective_rank=stats.effective_rank,
        rankme=stats.rankme,
        alignment=stats.alignment,
        alignment_norm=normalised_alignment(v1, v2),
        uniformity=stats.uniformity,
        dim=float(stats.dim),
    )
    if eval_cfg.identifiability:
        metrics.update(
            identifiability_metrics(model, splits, model.patch_size, eval_cfg, cfg.train.seed)
        )
    return metrics, stats.spectrum


def evaluate_pixels(
    cfg: Config, splits: Splits, eval_cfg: EvalConfig, patch_size: int
) -> tuple[dict[str, float], list[float]]:
    """The raw-pixel baseline: the same probes with flattened normalised images as features."""
    size = cfg.data.image_size or splits.train.image_size
    train, test = pixel_features(splits.train, size), pixel_features(splits.test, size)
    metrics = probe_metrics(train, test, splits.train.num_classes, eval_cfg)
    stats = collapse_stats(test.x[: eval_cfg.view_images])
    metrics.update(
        effective_rank=stats.effective_rank,
        rankme=stats.rankme,
        uniformity=stats.uniformity,
        dim=float(stats.dim),
    )
    if eval_cfg.identifiability:
        metrics.update(identifiability_metrics(None, splits, patch_size, eval_cfg))
    return metrics, stats.spectrum


def evaluate_run(run_dir: str | Path, eval_cfg: EvalConfig | None = None) -> dict[str, Any]:
    """Evaluate `RUN/checkpoints/last.pt` and write `RUN/results.json`; returns its content."""
    eval_cfg = eval_cfg or EvalConfig()
    folder = RunFolder(run_dir)
    t0 = time.time()
    model, cfg = load_pretrained(folder.last_checkpoint)
    splits = cached_splits(cfg.data)
    metrics, spectrum = evaluate_model(model, cfg, splits, eval_cfg)
    curve: list[dict[str, Any]] = []
    if eval_cfg.study:
        metrics.update(
            study_metrics(model, cfg, splits, eval_cfg.study_images, eval_cfg.study_kernel)
        )
        # the untrained network this run started from, scored by the same evaluations
        plain = eval_cfg.model_copy(update={"identifiability": False})
        rand, _ = evaluate_model(random_encoder(model.arch, cfg.train.seed), cfg, splits, plain)
        metrics.update({f"random.{k}": v for k, v in rand.items()})
        per_epoch = max(1, len(splits.train) // cfg.train.batch_size)
        read = f"{HELD_RANK}.encoder" in metrics  # the study readouts ran (data with latents)
        curve = learning_curve(
            folder.root, splits, per_epoch, eval_cfg.study_images, cfg.train.seed,
            principal_k(cfg), curve_row(metrics) if read else None,
        )  # fmt: skip
        if read and curve:  # step 0: the untrained network the run started from
            curve.insert(0, {"step": 0, **curve_row(metrics, "random")})
    epochs = [r for r in read_metrics(folder.metrics) if r.get("kind") == "epoch"]
    if epochs:
        metrics["final_loss"] = float(epochs[-1]["loss"])
        metrics["train_seconds"] = float(epochs[-1].get("seconds", math.nan))
        metrics["steps"] = float(epochs[-1]["step"])
    results = {
        "run": folder.root.name,
        "metrics": metrics,
        "spectrum": spectrum,
        "curve": curve,
        "eval": eval_cfg.model_dump(mode="json"),
        "eval_seconds": time.time() - t0,
    }
    write_json_atomic(folder.results, results)
    return results


def evaluate_baselines(
    cfg: Config, out_dir: str | Path, eval_cfg: EvalConfig | None = None
) -> dict[str, dict[str, Any]]:
    """Random-init encoder (built as pretraining with `cfg` would start) and raw pixels, scored
    like a run; metrics and spectra are written to `out_dir/results.json`."""
    eval_cfg = eval_cfg or EvalConfig()
    splits = cached_splits(cfg.data)
    cfg, _ = apply_recipe(cfg, splits)  # the architecture the runs' recipe gives them
    model = random_encoder(build_model_for(cfg, splits).arch, cfg.train.seed)
    rand, rand_spec = evaluate_model(model, cfg, splits, eval_cfg)
    pix, pix_spec = evaluate_pixels(cfg, splits, eval_cfg, model.patch_size)
    out = {"random_init": {**rand, "data": cfg.data.name}, "pixels": {**pix, "data": cfg.data.name}}
    record = {
        "baselines": out,
        "spectra": {"random_init": rand_spec, "pixels": pix_spec},
        "eval": eval_cfg.model_dump(mode="json"),
    }
    write_json_atomic(RunFolder(out_dir).results, record)
    return out
