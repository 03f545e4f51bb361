"""How long a pretraining run will take, estimated from the wall time of its first steps.

A first estimate comes right after the first step, however long that step took: its time times
the steps to run. That step also pays one-off costs (allocator growth, kernel selection, a
compiled graph), so the estimate is then refined from the next `ETA_STEPS` steps, their mean
extrapolated over the steps still to run, and printed again when it reads differently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

ETA_STEPS = 5  # timed steps after the first
LONG_RUN_S = 3600.0  # above this the estimate comes with a warning
FIRST_STEP_NOTE = " (from the first step; refined after a few more)"
WARNING = "warning: "  # the long-run line starts with it (printed even when quiet)


def device_label(device: torch.device) -> str:
    """Short name of the device the steps run on, for the estimate's line."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n > 1 else ''})"
    return device.type


def eta_lines(seconds: float, steps: int, device: str, first: bool = False) -> list[str]:
    """The estimate's line, plus a one-line warning when the run will take over an hour
    (`first`: the first-step estimate, marked as such and without the warning)."""
    minutes = seconds / 60.0
    span = "under 1 min" if minutes < 1 else f"about {math.ceil(minutes)} min"
    lines = [f"{span} for {steps} steps on {device}" + (FIRST_STEP_NOTE if first else "")]
    if seconds > LONG_RUN_S and not first:
        lines.append(
            f"{WARNING}this run will take over an hour on {device} (about {minutes / 60:.1f} h); "
            "a smaller model, fewer epochs or a faster device shortens it"
        )
    return lines


class EtaClock:
    """Call `tick()` after every step; it returns the estimate's lines when there are any."""

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
        self.first_line = ""
        self.refines = steps > 1 + measure  # enough steps to time after the first
        self.reported = steps <= 1  # a one-step run is over when an estimate could come

    def tick(self) -> list[str]:
        self.done_steps += 1
        if self.reported:
            return []
        now = self.clock()
        if self.done_steps == 1:
            self.timed_from = now
            self.reported = not self.refines
            # the only estimate of a short run: the long-run warning comes with it
            lines = eta_lines((now - self.started) * self.steps, self.steps, self.device,
                              first=self.refines)  # fmt: skip
            self.first_line = lines[0]
            return lines
        if self.done_steps < 1 + self.measure:
            return []
        self.reported = True
        per_step = (now - self.timed_from) / self.measure
        total = (now - self.started) + per_step * (self.steps - self.done_steps)
        lines = eta_lines(total, self.steps, self.device)
        same = lines[0] + FIRST_STEP_NOTE == self.first_line
        return lines[1:] if same else lines
