"""Wall and process-CPU clocks around a device-synchronised block, and the matmul roofline."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Clocks:
    """A figure by the wall clock and by the process CPU clock (all threads of the process).

    On a shared machine the wall clock also counts time when other processes hold the cores;
    with one thread, CPU time is what an idle core would take. With several threads it also
    counts OpenMP threads spinning at barriers.
    """

    wall: float
    cpu: float


class Timer:
    """`with Timer(device) as t: ...` leaves both clocks' elapsed seconds in `t.elapsed`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.elapsed = Clocks(0.0, 0.0)

    def __enter__(self) -> Timer:
        _sync(self.device)
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self.elapsed = Clocks(time.perf_counter() - self._wall, time.process_time() - self._cpu)


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously: without a sync the clock stops before they finish
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, reps: int = 3) -> Clocks:
    """Best FLOP/s of a large square `torch.mm` (the roofline the model's matmuls aim at), by
    the wall clock and by the process's CPU clock."""
    size = 2048 if device.type == "cpu" else 8192
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = Clocks(float("inf"), float("inf"))
    for _ in range(reps):
        with Timer(device) as t:
            a @ b
        best = Clocks(min(best.wall, t.elapsed.wall), min(best.cpu, t.elapsed.cpu))
    return Clocks(2 * size**3 / best.wall, 2 * size**3 / best.cpu)
