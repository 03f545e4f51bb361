"""The data splits an evaluation reads, remembered for the last data config."""

from __future__ import annotations

from maelab.config import DataConfig
from maelab.data import build_splits
from maelab.data.base import Splits

_SPLITS: dict[str, Splits] = {}


def cached_splits(data_cfg: DataConfig) -> Splits:
    """`build_splits`, remembered for the last data config: a sweep in one process evaluates
    many runs of the same data, and generating it costs more than evaluating a small model."""
    key = data_cfg.model_dump_json()
    if key not in _SPLITS:
        _SPLITS.clear()
        _SPLITS[key] = build_splits(data_cfg)
    return _SPLITS[key]
