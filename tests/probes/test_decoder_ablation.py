"""Decoder ablation table (Cao Q4): aggregation by (depth, width) against hand values."""

from __future__ import annotations

import math

import pytest

from maelab.probes.decoder import decoder_ablation


def test_mean_std_count_per_cell() -> None:
    rows = [
        {"decoder_depth": 1, "decoder_embed_dim": 64, "linear": 0.5, "knn": 0.4, "seed": 0},
        {"decoder_depth": 1, "decoder_embed_dim": 64, "linear": 0.7, "knn": None, "seed": 1},
        {"model.decoder_depth": 4, "model.decoder_embed_dim": 64, "linear": 0.8},
        {"decoder_depth": 2, "decoder_width": 128, "linear": 0.6, "effective_rank": 20.0},
    ]
    res = decoder_ablation(rows)
    assert res.depths == [1, 2, 4] and res.widths == [64, 128]
    assert [(c.depth, c.width) for c in res.cells] == [(1, 64), (4, 64), (2, 128)]
    c = res.cell(1, 64)
    assert c is not None
    assert c.mean["linear"] == pytest.approx(0.6)
    assert c.std["linear"] == pytest.approx(math.sqrt(0.02))
    assert c.count == {"linear": 2, "knn": 1, "effective_rank": 0}
    assert c.std["knn"] == 0.0 and math.isnan(c.mean["effective_rank"])
    table = res.table()
    assert table[0]["decoder_depth"] == 1 and table[0]["runs"] == 2
    assert table[2]["effective_rank"] == 20.0


def test_custom_metrics_and_errors() -> None:
    res = decoder_ablation(
        [{"decoder_depth": 2, "decoder_embed_dim": 32, "rankme": 3.0}], ["rankme"]
    )
    assert res.metrics == ["rankme"] and res.cells[0].mean["rankme"] == 3.0
    with pytest.raises(ValueError, match="decoder depth"):
        decoder_ablation([{"decoder_embed_dim": 32, "linear": 0.1}])
    with pytest.raises(ValueError):
        decoder_ablation([])
