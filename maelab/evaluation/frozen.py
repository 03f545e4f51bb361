"""Frozen-feature evaluation (the `probe` command): linear probe + k-NN of a pretrained
encoder and of its baselines (a random encoder of the same architecture, raw pixels).

Not to be confused with the theory probes (maelab.probes). Thin orchestration: load the
checkpoint, extract (or read cached) features for each source, call the pure `linear_probe`
and `knn_accuracy`, and write one table and `probe.json`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from maelab.config import DataConfig, Strict, load_config
from maelab.data import build_splits
from maelab.data.base import Split, Splits
from maelab.engine.device import resolve_device
from maelab.errors import ConfigError
from maelab.evaluation.baselines import random_encoder
from maelab.evaluation.features import (
    FEATURES_VERSION,
    Features,
    cached_features,
    encoder_features,
    pixel_features,
)
from maelab.evaluation.knn import KNNResult, knn_accuracy
from maelab.evaluation.linear_probe import ProbeResult, linear_probe
from maelab.evaluation.probe_config import ProbeConfig
from maelab.models.checkpoints import checkpoint_fingerprint, load_pretrained
from maelab.models.mae import MaskedAutoencoder
from maelab.run_folder import RunFolder, write_json_atomic

Source = Literal["random", "pixels"]


class FrozenRunConfig(Strict):
    """What `maelab probe` validates: data (default: the checkpoint's), the probe, baselines."""

    data: DataConfig = DataConfig()
    probe: ProbeConfig = ProbeConfig()
    baselines: list[Source] = ["random", "pixels"]
    device: str = "auto"
    out_dir: str | None = None  # None: the checkpoint's run folder


@dataclass(frozen=True)
class SourceScores:
    """One row of the probe table."""

    source: str
    dim: int
    linear: ProbeResult
    knn: KNNResult


@dataclass
class FrozenReport:
    rows: list[SourceScores]
    table: str
    json_path: Path
    seconds: float


def frozen_run_config(
    ckpt_config: dict[str, Any], files: list[str] | None = None, overrides: list[str] | None = None
) -> FrozenRunConfig:
    """The checkpoint's data section, then YAML files, then `key=value` overrides, validated."""
    base = {"data": ckpt_config.get("data", {})}
    return load_config(files, overrides, FrozenRunConfig, base=base)


def score_features(
    train: Features,
    test: Features,
    num_classes: int,
    cfg: ProbeConfig,
    source: str,
    device: torch.device | str = "cpu",
) -> SourceScores:
    """Linear probe and k-NN of one feature source (run on `device`)."""
    trx, tr_y, tex, te_y = (t.to(device) for t in (train.x, train.labels, test.x, test.labels))
    lin = linear_probe(trx, tr_y, tex, te_y, num_classes, cfg.linear_probe)
    knn = knn_accuracy(trx, tr_y, tex, te_y, num_classes, k=cfg.knn_k, t=cfg.knn_t)
    return SourceScores(source, train.x.shape[1], lin, knn)


def format_table(rows: list[SourceScores]) -> str:
    """Rows = feature sources; columns = linear top-1, (top-5), k-NN top-1 (percent)."""
    with_top5 = any(r.linear.top5 is not None for r in rows)
    header = (
        ["features", "dim", "linear top-1"]
        + (["linear top-5"] if with_top5 else [])
        + ["k-NN top-1"]
    )
    lines = []
    for r in rows:
        cells = [r.source, str(r.dim), f"{r.linear.top1:.1f}"]
        if with_top5:
            cells.append("-" if r.linear.top5 is None else f"{r.linear.top5:.1f}")
        cells.append(f"{r.knn.top1:.1f}")
        lines.append(cells)
    widths = [max(len(header[i]), *(len(c[i]) for c in lines)) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *(fmt(c) for c in lines)])


def split_features(
    net: MaskedAutoencoder,
    splits: Splits,
    name: str,
    cfg: ProbeConfig,
    cache_dir: Path,
    key: dict[str, Any],
    device: torch.device,
    quiet: bool,
) -> tuple[Features, Features]:
    """Train and test features of one encoder, read from or written to `cache_dir`."""
    out = []
    for split_name, split in (("train", splits.train), ("test", splits.test)):

        def compute(split: Split = split, split_name: str = split_name) -> Features:
            desc = f"{name} {split_name}"
            return encoder_features(
                net, split, cfg.pool, cfg.feature_batch_size, device, quiet, desc
            )

        file_name = f"{split_name}_{name}_{cfg.pool}"
        out.append(cached_features(cache_dir, file_name, {**key, "split": split_name}, compute))
    return out[0], out[1]


def _check_fit(model: MaskedAutoencoder, splits: Splits, data: DataConfig) -> None:
    if splits.train.channels != model.arch.in_chans:
        raise ConfigError(
            f"data.name={data.name} has {splits.train.channels} channel(s) but the checkpoint's encoder "
            f"takes {model.arch.in_chans}; probe it on data with {model.arch.in_chans} channel(s)"
        )


def evaluate_frozen(
    ckpt: str | Path, run_cfg: FrozenRunConfig, quiet: bool = False
) -> FrozenReport:
    """Linear probe + k-NN of a pretraining checkpoint's frozen encoder and its baselines;
    writes `probe.json` and `probe.txt` (default: into the checkpoint's run folder)."""
    t0 = time.time()
    cfg = run_cfg.probe
    model, pre_cfg = load_pretrained(ckpt)
    device = resolve_device(run_cfg.device)
    splits = build_splits(run_cfg.data)
    _check_fit(model, splits, run_cfg.data)
    folder = RunFolder(run_cfg.out_dir) if run_cfg.out_dir else RunFolder.of_checkpoint(ckpt)
    cache_dir = folder.features
    num_classes = splits.train.num_classes
    img_size = model.arch.img_size
    common = {
        "data": run_cfg.data.model_dump(mode="json"),
        "img_size": img_size,
        "version": FEATURES_VERSION,
    }

    def encoder_source(
        name: str, net: MaskedAutoencoder, ident: dict[str, Any]
    ) -> tuple[Features, Features]:
        key = {**common, **ident, "pool": cfg.pool}
        return split_features(net.to(device), splits, name, cfg, cache_dir, key, device, quiet)

    sources = {"mae": encoder_source("mae", model, {"checkpoint": checkpoint_fingerprint(ckpt)})}
    if "random" in run_cfg.baselines:
        seed = pre_cfg.train.seed
        net = random_encoder(model.arch, seed)
        sources["random"] = encoder_source("random", net, {"arch": model.arch_dict(), "seed": seed})
    if "pixels" in run_cfg.baselines:
        sources["pixels"] = (
            pixel_features(splits.train, img_size),
            pixel_features(splits.test, img_size),
        )

    rows = [
        score_features(tr, te, num_classes, cfg, name, device) for name, (tr, te) in sources.items()
    ]
    table = format_table(rows)
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.probe_table.write_text(table + "\n")
    record = {
        "checkpoint": str(Path(ckpt).resolve()),
        "data": run_cfg.data.model_dump(mode="json"),
        "probe": cfg.model_dump(mode="json"),
        "baselines": list(run_cfg.baselines),
        "num_train": len(splits.train),
        "num_test": len(splits.test),
        "num_classes": num_classes,
        "rows": [
            {"source": r.source, "dim": r.dim, "linear": asdict(r.linear), "knn": asdict(r.knn)}
            for r in rows
        ],
        "seconds": time.time() - t0,
    }
    json_path = write_json_atomic(folder.probe_result, record)
    return FrozenReport(rows, table, json_path, time.time() - t0)
