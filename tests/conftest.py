"""Test-wide settings: one intra-op thread.

The test models are tiny, so a second thread buys little, and on a loaded 2-core machine
OpenMP spin-waiting made two threads 3-15x slower than one.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)
