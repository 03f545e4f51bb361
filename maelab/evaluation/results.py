"""The standard evaluations of one pretrained run, stored as `results.json` in its folder.

Linear probe and k-NN on frozen pooled features (`ProbeConfig`) and collapse numbers
(effective rank, RankMe, alignment / uniformity of masked views drawn with the run's mask). The
same evaluations score two baselines that need no training: a randomly initialised encoder of
the same architecture and the raw pixels. Readouts that live above evaluation (the
identifiability probe, the study's selectivity readouts) are added by
`maelab.experiments.run_results`, which writes the file.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from maelab import metric_names as m
from maelab.config import MASK_RATIO, Config
from maelab.data.base import Splits
from maelab.engine.metrics_log import read_metrics
from maelab.evaluation.collapse import encoder_views
from maelab.evaluation.features import Features, encoder_features, pixel_features
from maelab.evaluation.frozen import score_features
from maelab.evaluation.probe_config import ProbeConfig
from maelab.metrics import collapse_stats, normalised_alignment
from maelab.models.mae import MaskedAutoencoder
from maelab.run_folder import RunFolder
from maelab.run_records import DATA, Baselines, RunResults, write_run_results
from maelab.run_records import write_baselines as write_run_baselines


class EvalConfig(ProbeConfig):
    """Which evaluations a sweep runs after each pretraining run, and their budgets: the probe
    (inherited, with its defaults) plus collapse views and the readouts above evaluation."""

    max_train: int | None = None  # cap on training images for the probes (None: all)
    view_images: int = 1024  # test images for collapse / alignment / uniformity
    identifiability: bool = True  # synthetic data only
    id_max_images: int = 1024
    id_kernel: bool = False  # RBF kernel ridge as well as ridge (slower)
    study: bool = False  # selectivity readouts, the same seed's random encoder, learning curve
    study_images: int = 512  # fit and held-out images of the selectivity readouts (each)
    study_kernel: bool = False  # Nystroem-RBF readouts beside the linear ones (slower)


def probe_metrics(
    train: Features, test: Features, num_classes: int, cfg: EvalConfig
) -> dict[str, float]:
    """Linear-probe and k-NN top-1 (percent) of frozen features."""
    scores = score_features(train.head(cfg.max_train), test, num_classes, cfg, "")
    lp, knn = scores.linear, scores.knn
    return {m.LINEAR_TOP1: lp.top1, m.LINEAR_TRAIN_TOP1: lp.train_top1, m.KNN_TOP1: knn.top1}


def evaluate_model(
    model: MaskedAutoencoder, cfg: Config, splits: Splits, eval_cfg: EvalConfig
) -> tuple[dict[str, float], list[float]]:
    """Probe and collapse numbers of one encoder (flat dict of floats), its covariance spectrum."""
    model.eval()
    pool = eval_cfg.pool
    # only the first max_train are probed: encoding the rest would be thrown away
    batch = eval_cfg.feature_batch_size
    train = encoder_features(model, splits.train, pool, batch, max_images=eval_cfg.max_train)
    test = encoder_features(model, splits.test, pool, batch)
    metrics = probe_metrics(train, test, splits.train.num_classes, eval_cfg)
    collapse, spectrum = collapse_metrics(model, cfg, splits, eval_cfg)
    return {**metrics, **collapse}, spectrum


def collapse_metrics(
    model: MaskedAutoencoder, cfg: Config, splits: Splits, eval_cfg: EvalConfig
) -> tuple[dict[str, float], list[float]]:
    """Effective rank, RankMe, alignment (raw and normalised) and uniformity of one encoder's
    pooled test features and two masked views drawn with the run's mask; its spectrum."""
    model.eval()
    # a plain autoencoder (ratio 0) has no masked views of its own: its views are drawn at the
    # default ratio, as an MAE's, so that the two align on the same views
    mask = cfg.mask if cfg.mask.ratio > 0 else cfg.mask.model_copy(update={"ratio": MASK_RATIO})
    full, v1, v2 = encoder_views(
        model, splits.test, mask, eval_cfg.view_images, eval_cfg.pool, seed=cfg.train.seed
    )
    stats = collapse_stats(full, v1, v2)
    return {
        m.EFFECTIVE_RANK: stats.effective_rank,
        m.RANKME: stats.rankme,
        m.ALIGNMENT: stats.alignment,
        m.ALIGNMENT_NORM: normalised_alignment(v1, v2),
        m.UNIFORMITY: stats.uniformity,
        m.DIM: float(stats.dim),
    }, stats.spectrum


def evaluate_pixels(
    cfg: Config, splits: Splits, eval_cfg: EvalConfig
) -> tuple[dict[str, float], list[float]]:
    """The raw-pixel baseline: the same probes with flattened normalised images as features."""
    size = cfg.data.image_size or splits.train.image_size
    train, test = pixel_features(splits.train, size), pixel_features(splits.test, size)
    metrics = probe_metrics(train, test, splits.train.num_classes, eval_cfg)
    stats = collapse_stats(test.x[: eval_cfg.view_images])
    metrics.update({m.EFFECTIVE_RANK: stats.effective_rank, m.RANKME: stats.rankme,
                    m.UNIFORMITY: stats.uniformity, m.DIM: float(stats.dim)})  # fmt: skip
    return metrics, stats.spectrum


def training_metrics(folder: RunFolder) -> dict[str, float]:
    """Final loss, training seconds and steps of a run, from its last epoch's log line."""
    epochs = [r for r in read_metrics(folder.metrics) if r.get("kind") == "epoch"]
    if not epochs:
        return {}
    last = epochs[-1]
    return {
        m.FINAL_LOSS: float(last["loss"]),
        "train_seconds": float(last.get("seconds", math.nan)),
        "steps": float(last["step"]),
    }


def write_results(
    folder: RunFolder,
    metrics: dict[str, float],
    spectrum: list[float],
    curve: list[dict[str, Any]],
    eval_cfg: EvalConfig,
    started: float,
) -> RunResults:
    """`RUN/results.json` (`maelab.run_records`): the metrics, the spectrum, the learning curve
    and the settings."""
    results = RunResults(metrics, spectrum, curve)
    settings = eval_cfg.model_dump(mode="json")
    write_run_results(folder.root, results, run=folder.root.name, eval=settings,
                      eval_seconds=time.time() - started)  # fmt: skip
    return results


def write_baselines(
    out_dir: str | Path,
    scored: dict[str, tuple[dict[str, float], list[float]]],
    data_name: str,
    eval_cfg: EvalConfig,
) -> dict[str, dict[str, Any]]:
    """`out_dir/results.json` of the baselines (name -> metrics and spectrum); returns the
    metrics by name, each with the data set's name."""
    out = {name: {**metrics, DATA: data_name} for name, (metrics, _) in scored.items()}
    spectra = {name: spectrum for name, (_, spectrum) in scored.items()}
    write_run_baselines(out_dir, Baselines(out, spectra), eval=eval_cfg.model_dump(mode="json"))
    return out
