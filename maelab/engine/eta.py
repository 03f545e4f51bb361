"""How long a pretraining run will take, estimated from the wall time of its first steps.

The first step is left out of the estimate: it pays for one-off costs (allocator growth, kernel
selection, a compiled graph) that later steps do not. The next `ETA_STEPS` steps are timed and
their mean extrapolated over the steps still to run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

ETA_STEPS = 5  # timed steps after the first
LONG_RUN_S = 3600.0  # above this the estimate comes with a warning


def device_label(device: torch.device) -> str:
    """Short name of the device the steps run on, for the estimate's line."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n > 1 else ''})"
    return device.type


def eta_lines(seconds: float, steps: int, device: str) -> list[str]:
    """The estimate's line, plus a one-line warning when the run will take over an hour."""
    minutes = seconds / 60.0
    span = "under 1 min" if minutes < 1 else f"about {math.ceil(minutes)} min"
    lines = [f"{span} for {steps} steps on {device}"]
    if seconds > LONG_RUN_S:
        lines.append(
            f"warning: this run will take over an hour on {device} (about {minutes / 60:.1f} h); "
            "a smaller model, fewer epochs or a faster device shortens it"
        )
    return lines


class EtaClock:
    """Call `tick()` after every step; it returns the estimate's lines once, else nothing."""

    def __init__(
        self,
        steps: int,
        device: str,
        measure: int = ETA_STEPS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.steps = steps  # steps this invocation will run
        self.device = device
        self.measure = measure
        self.clock = clock
        self.done_steps = 0
        self.started = clock()
        self.timed_from = math.nan  # end of the first step
        self.reported = steps <= 1 + measure  # a run this short has no use for an estimate

    def tick(self) -> list[str]:
        self.done_steps += 1
        if self.reported:
            return []
        now = self.clock()
        if self.done_steps == 1:
            self.timed_from = now
            return []
        if self.done_steps < 1 + self.measure:
            return []
        self.reported = True
        per_step = (now - self.timed_from) / self.measure
        total = (now - self.started) + per_step * (self.steps - self.done_steps)
        return eta_lines(total, self.steps, self.device)
