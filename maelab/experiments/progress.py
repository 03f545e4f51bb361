"""Progress display of a sweep: overall steps with ETA, plus one bar per run in flight.

Runs may train in other processes, so progress is read from each run's `metrics.jsonl` (its last
logged step) by a polling thread rather than reported by the training loop.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Evaluation after training costs about as much as this many training steps; it keeps the
# overall ETA from jumping when a run's probes start.
EVAL_STEPS = 60


class SweepProgress:
    """Context manager; `start(name, run_dir)` when a run begins, `finish(name, ok)` at its end."""

    def __init__(
        self, jobs: list[tuple[str, int | None]], already_done: int, disabled: bool = False
    ) -> None:
        self.disabled = disabled
        self.console = Console(file=sys.stderr)
        self.totals = {name: (total or 0) + EVAL_STEPS for name, total in jobs}
        self.num_jobs = len(jobs)
        self.already_done = already_done
        self.finished = 0
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=disabled,
            refresh_per_second=2,
        )
        self.overall: TaskID | None = None
        self.active: dict[str, tuple[TaskID, Path]] = {}
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
        self.progress.start()
        self.overall = self.progress.add_task(
            self._label(), total=sum(self.totals.values()) or None
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.disabled:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self.progress.stop()

    def start(self, name: str, run_dir: Path) -> None:
        if self.disabled:
            return
        with self._lock:
            short = name if len(name) <= 48 else name[:45] + "..."
            task = self.progress.add_task(f"  {short}", total=self.totals.get(name) or None)
            self.active[name] = (task, run_dir)

    def finish(self, name: str, ok: bool) -> None:
        if self.disabled:
            return
        with self._lock:
            task, _ = self.active.pop(name, (None, None))
            if task is not None:
                self.progress.remove_task(task)
            self.finished += 1
            self.done_steps += self.totals.get(name, 0)
            self._refresh_overall()

    def log(self, message: str) -> None:
        """A line above the bars (or plain when the display is off)."""
        if self.disabled:
            return
        self.console.print(message, highlight=False, markup=False, soft_wrap=True)

    def _refresh_overall(self) -> None:
        if self.overall is None:
            return
        from maelab.experiments.sweep import latest_step

        running = 0
        for name, (task, run_dir) in self.active.items():
            step = min(latest_step(run_dir), self.totals.get(name, 0) - EVAL_STEPS)
            running += max(step, 0)
            self.progress.update(task, completed=step)
        self.progress.update(
            self.overall, completed=self.done_steps + running, description=self._label()
        )

    def _poll(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                try:
                    self._refresh_overall()
                except Exception:  # a half-written log line must never kill the display
                    pass


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str = "") -> None:
    """A small rich table on stdout (used by the CLI for sweep and study summaries)."""
    from rich.table import Table

    table = Table(title=title or None)
    for c in columns:
        table.add_column(c, justify="left" if c in ("run", "name") else "right")
    for r in rows:
        table.add_row(*[_cell(r.get(c)) for c in columns])
    Console().print(table)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return "" if v is None else str(v)
