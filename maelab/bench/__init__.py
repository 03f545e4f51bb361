"""Training-step benchmarks: maelab against Hugging Face ViTMAE and a textbook timm MAE.

`python -m maelab.bench` (or `maelab bench`, or benchmarks/train_throughput.py) runs the
throughput comparison; the other scripts in benchmarks/ build on the same pieces.
"""

from maelab.bench.clocks import Clocks, Timer, matmul_peak
from maelab.bench.flops import block_flops, train_flops
from maelab.bench.harness import (
    CONFIGS,
    EXTRA_IMPLS,
    IMPLS,
    MASK_RATIO,
    BenchConfig,
    build,
    same_loss_check,
)
from maelab.bench.peers import TextbookMAE

__all__ = [
    "CONFIGS",
    "EXTRA_IMPLS",
    "IMPLS",
    "MASK_RATIO",
    "BenchConfig",
    "Clocks",
    "TextbookMAE",
    "Timer",
    "block_flops",
    "build",
    "matmul_peak",
    "same_loss_check",
    "train_flops",
]
