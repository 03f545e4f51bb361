"""Progress display of a sweep: overall steps with ETA, plus one bar per run in flight (tqdm).

Runs may train in other processes, so progress is read from each run's `metrics.jsonl` (its last
logged step) by a polling thread rather than reported by the training loop.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from tqdm import tqdm

from maelab.run_folder import RunFolder

# Evaluation after training costs about as much as this many training steps; it keeps the
# overall ETA from jumping when a run's probes start.
EVAL_STEPS = 60
NAME_WIDTH = 48


def _bar(desc: str, total: int | None, position: int) -> tqdm:
    return tqdm(
        total=total,
        desc=desc,
        unit="step",
        position=position,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
        bar_format="{desc} {bar} {n_fmt}/{total_fmt} steps {elapsed} ETA {remaining}",
    )


class SweepProgress:
    """Context manager; `start(name, run_dir)` when a run begins, `finish(name, ok)` at its end."""

    def __init__(
        self, jobs: list[tuple[str, int | None]], already_done: int, disabled: bool = False
    ) -> None:
        self.disabled = disabled
        self.totals = {name: (total or 0) + EVAL_STEPS for name, total in jobs}
        self.num_jobs = len(jobs)
        self.already_done = already_done
        self.finished = 0
        self.overall: tqdm | None = None
        self.active: dict[str, tuple[tqdm, Path]] = {}
        self.done_steps = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _label(self) -> str:
        total = self.num_jobs + self.already_done
        return f"sweep: run {min(self.already_done + self.finished + 1, total)} of {total}"

    def __enter__(self) -> SweepProgress:
        if self.disabled:
            return self
        self.overall = _bar(self._label(), sum(self.totals.values()) or None, 0)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.disabled:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for bar, _ in self.active.values():
                bar.close()
            self.active.clear()
            if self.overall is not None:
                self.overall.close()

    def start(self, name: str, run_dir: Path) -> None:
        if self.disabled:
            return
        with self._lock:
            short = name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 3] + "..."
            taken = {bar.pos for bar, _ in self.active.values()}
            line = next(i for i in range(1, len(taken) + 2) if i not in taken and -i not in taken)
            bar = _bar(f"  {short}", self.totals.get(name) or None, line)
            self.active[name] = (bar, run_dir)

    def finish(self, name: str, ok: bool) -> None:
        if self.disabled:
            return
        with self._lock:
            bar, _ = self.active.pop(name, (None, None))
            if bar is not None:
                bar.close()
            self.finished += 1
            self.done_steps += self.totals.get(name, 0)
            self._refresh_overall()

    def log(self, message: str) -> None:
        """A line above the bars (or nothing when the display is off)."""
        if self.disabled:
            return
        tqdm.write(message, file=sys.stderr)

    def _refresh_overall(self) -> None:
        if self.overall is None:
            return
        running = 0
        for name, (bar, run_dir) in self.active.items():
            step = min(RunFolder(run_dir).latest_step(), self.totals.get(name, 0) - EVAL_STEPS)
            running += max(step, 0)
            bar.n = max(step, 0)
            bar.refresh()
        self.overall.n = self.done_steps + running
        self.overall.set_description(self._label(), refresh=False)
        self.overall.refresh()

    def _poll(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                try:
                    self._refresh_overall()
                except Exception:  # a half-written log line must never kill the display
                    pass
