"""The frozen-feature probe, described once: pooling, the linear head's recipe and k-NN.

`maelab probe`, the evaluations of every sweep run (`EvalConfig` extends it) and the collapse
views read the same settings with the same defaults, so a number means the same probe wherever
it is printed.
"""

from __future__ import annotations

from pydantic import Field

from maelab.config import Strict
from maelab.evaluation.linear_probe import LinearProbeConfig
from maelab.models.pooling import DEFAULT_POOL, Pool


class ProbeConfig(Strict):
    """Linear probe + k-NN on frozen pooled features of the full, unmasked image."""

    pool: Pool = DEFAULT_POOL
    linear_probe: LinearProbeConfig = LinearProbeConfig()
    knn_k: int = Field(20, ge=1)  # neighbours of the DINO k-NN
    knn_t: float = Field(0.07, gt=0.0)  # its temperature: weights exp(s / t)
    feature_batch_size: int = Field(256, ge=1)
