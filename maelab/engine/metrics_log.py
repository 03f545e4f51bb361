"""Metrics sinks: JSONL (one object per line) and TensorBoard, written by rank 0 only."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from maelab.errors import MaelabError
from maelab.run_folder import RunFolder, atomic_write


class MetricsLog:
    """Append-only `metrics.jsonl` plus TensorBoard scalars."""

    def __init__(
        self, run: RunFolder, enabled: bool = True, resume_step: int | None = None
    ) -> None:
        self.enabled = enabled
        self.path = run.metrics
        self._tb: SummaryWriter | None = None
        if not enabled:
            return
        # a fresh run replaces an old log in the same folder, as it replaces its checkpoints
        truncate_after(self.path, resume_step if resume_step is not None else 0)
        self._tb = SummaryWriter(
            log_dir=str(run.tensorboard),
            purge_step=resume_step if resume_step is not None else 0,
        )

    def write(self, record: dict[str, Any]) -> None:
        if self._tb is None:  # disabled (not the main process)
            return
        try:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise MaelabError(f"cannot write {self.path} ({exc.strerror or exc})") from None
        step = int(record.get("step", 0))
        for key, value in record.items():
            if key not in ("step", "epoch", "kind") and isinstance(value, (int, float)):
                if math.isfinite(value):
                    self._tb.add_scalar(f"{record.get('kind', 'train')}/{key}", value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _parse(line: str) -> dict[str, Any] | None:
    """One record, or None for a line torn by a killed process (or not a record at all)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("step", 0), (int, float)):
        return None
    return record


def truncate_after(path: Path, step: int) -> None:
    """Drop records logged after `step`: they belong to work a resumed run will redo.

    Torn lines are dropped too. The file is replaced atomically, so a kill here loses nothing.
    """
    if not path.exists():
        return
    keep = []
    for line in path.read_text(errors="replace").splitlines():
        record = _parse(line)
        if record is not None and record.get("step", 0) <= step:
            keep.append(line)
    data = "".join(line + "\n" for line in keep).encode()
    atomic_write(path, lambda f: f.write(data))


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, skipping torn or foreign lines."""
    p = Path(path)
    if not p.exists():
        return []
    records = (_parse(line) for line in p.read_text(errors="replace").splitlines() if line.strip())
    return [r for r in records if r is not None]
