"""Cao Q4: the decoder matters for the encoder's representation, although it is thrown away.

The runs come from a sweep over decoder depth and width (done elsewhere); this module turns
their rows of probe numbers into a table: mean, spread and count per (depth, width) cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEPTH_KEYS = ("decoder_depth", "model.decoder_depth")
WIDTH_KEYS = ("decoder_width", "decoder_embed_dim", "model.decoder_embed_dim")
DEFAULT_METRICS = ("linear", "knn", "effective_rank")


@dataclass(frozen=True)
class DecoderCell:
    depth: int
    width: int
    mean: dict[str, float]  # metric -> mean over runs (nan when no run reports it)
    std: dict[str, float]  # sample std over runs (0 for one run, nan when none)
    count: dict[str, int]  # runs that report the metric


@dataclass
class DecoderAblationResult:
    metrics: list[str]
    depths: list[int]
    widths: list[int]
    cells: list[DecoderCell]  # sorted by (width, depth)

    def cell(self, depth: int, width: int) -> DecoderCell | None:
        for c in self.cells:
            if c.depth == depth and c.width == width:
                return c
        return None

    def table(self) -> list[dict[str, float | int]]:
        """One flat row per cell: depth, width, ``metric`` and ``metric_std`` per metric, and
        ``runs`` (the most runs behind any metric of the cell)."""
        rows: list[dict[str, float | int]] = []
        for c in self.cells:
            row: dict[str, float | int] = {"decoder_depth": c.depth, "decoder_width": c.width}
            for m in self.metrics:
                row[m] = c.mean[m]
                row[f"{m}_std"] = c.std[m]
            row["runs"] = max(c.count.values(), default=0)
            rows.append(row)
        return rows


def _first(row: Mapping[str, object], keys: Sequence[str], what: str) -> int:
    for key in keys:
        if key in row and row[key] is not None:
            return int(row[key])  # type: ignore[call-overload]
    raise ValueError(f"run row has no {what} (one of: {', '.join(keys)}); keys: {sorted(row)}")


def decoder_ablation(
    rows: Sequence[Mapping[str, object]], metrics: Sequence[str] = DEFAULT_METRICS
) -> DecoderAblationResult:
    """Aggregate run rows by decoder (depth, width).

    Each row is a mapping with the decoder depth (``decoder_depth`` or ``model.decoder_depth``),
    its width (``decoder_width``, ``decoder_embed_dim`` or ``model.decoder_embed_dim``) and
    numbers under the ``metrics`` keys (e.g. ``linear`` and ``knn`` accuracy, ``effective_rank``);
    several rows per cell (seeds) give a mean and a sample std. Missing or non-finite metric
    values are skipped.
    """
    if not rows:
        raise ValueError("decoder_ablation needs at least one run row")
    metrics = list(metrics)
    groups: dict[tuple[int, int], dict[str, list[float]]] = {}
    for row in rows:
        key = (_first(row, DEPTH_KEYS, "decoder depth"), _first(row, WIDTH_KEYS, "decoder width"))
        bucket = groups.setdefault(key, {m: [] for m in metrics})
        for m in metrics:
            value = row.get(m)
            if isinstance(value, int | float) and math.isfinite(float(value)):
                bucket[m].append(float(value))
    cells = []
    for (depth, width), bucket in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        mean, std, count = {}, {}, {}
        for m, values in bucket.items():
            count[m] = len(values)
            mean[m] = sum(values) / len(values) if values else math.nan
            if len(values) > 1:
                std[m] = math.sqrt(sum((v - mean[m]) ** 2 for v in values) / (len(values) - 1))
            else:
                std[m] = 0.0 if values else math.nan
        cells.append(DecoderCell(depth, width, mean, std, count))
    return DecoderAblationResult(
        metrics=metrics,
        depths=sorted({d for d, _ in groups}),
        widths=sorted({w for _, w in groups}),
        cells=cells,
    )
