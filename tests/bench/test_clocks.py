"""Timer's two clocks and the matmul peak."""

from __future__ import annotations

import math
import time

import torch

from maelab.bench import Timer, matmul_peak


def test_timer_wall_counts_sleep_cpu_does_not() -> None:
    with Timer(torch.device("cpu")) as t:
        time.sleep(0.2)
    assert t.elapsed.wall >= 0.2
    assert 0.0 <= t.elapsed.cpu < 0.1  # sleeping holds no core


def test_timer_cpu_counts_work() -> None:
    with Timer(torch.device("cpu")) as t:
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
    assert t.elapsed.cpu >= 0.05
    assert t.elapsed.wall >= t.elapsed.cpu * 0.99  # one thread: no more CPU time than wall time


def test_matmul_peak_is_a_rate() -> None:
    peak = matmul_peak(torch.device("cpu"), reps=1)
    # FLOP/s of a 2048^3 product: any CPU that runs the suite does more than 1 GFLOP/s and no
    # CPU core does 100 TFLOP/s in fp32
    for rate in (peak.wall, peak.cpu):
        assert math.isfinite(rate) and 1e9 < rate < 1e14
