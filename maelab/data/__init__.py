"""Datasets: the embedded synthetic default, digits, the low-rank family, torchvision sets and
ImageFolder trees."""

from __future__ import annotations

from maelab.config import DataConfig
from maelab.data import (  # noqa: F401  (registration)
    digits,
    folder,
    gaussian,
    low_rank_family,
    synthetic,
    torchvision_sets,
)
from maelab.data.base import DATASETS, DatasetEntry, ImageSet, Splits, StreamingSet
from maelab.errors import ConfigError


def get_dataset(name: str) -> DatasetEntry:
    if name not in DATASETS:
        import difflib

        close = difflib.get_close_matches(name, list(DATASETS), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"valid: {', '.join(sorted(DATASETS))}"
        raise ConfigError(f"unknown dataset data.name='{name}' ({hint})")
    return DATASETS[name]


def build_splits(cfg: DataConfig) -> Splits:
    """Train and test splits of the configured dataset."""
    return get_dataset(cfg.name).build(cfg)


def augment_enabled(cfg: DataConfig) -> bool:
    return get_dataset(cfg.name).augment if cfg.augment is None else cfg.augment


__all__ = [
    "DATASETS",
    "DatasetEntry",
    "ImageSet",
    "Splits",
    "StreamingSet",
    "augment_enabled",
    "build_splits",
    "get_dataset",
]
