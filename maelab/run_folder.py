"""The run folder: the one place that knows where a run's files live.

A pretraining run, a sweep and an evaluation all write into folders of this shape:

    RUN/config.yaml           resolved config
    RUN/metrics.jsonl         one JSON record a line (train / epoch / eval)
    RUN/tensorboard/          TensorBoard events
    RUN/checkpoints/last.pt   (+ epoch_NNNN.pt)
    RUN/figures/              PNGs (reconstruction.png, ...)
    RUN/features/             cached frozen features
    RUN/probes/               theory-probe results (one JSON + figure each)
    RUN/results.json          the sweep's evaluation of the run
    RUN/done.json             written last: the run is complete
    RUN/probe.json, RUN/finetune.json, RUN/collapse.json
    RUN/analysis/             `maelab analyze collapse`: collapse.json and its spectra, collapse.png
    RUN/finetune/             `maelab finetune`: a run folder of its own (finetune.json, ...)
    SWEEP/sweep.json          a sweep's manifest; SWEEP/baselines/ its random / pixel rows
    SWEEP/report.html         the report
    DIR/calibration.json      `maelab calibrate` (a demo: STUDY/calibration/calibration.json)

Every JSON result is written through `write_json_atomic`: a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
FIGURE_DIR = "figures"
FEATURE_DIR = "features"
PROBE_DIR = "probes"
RESULTS_FILE = "results.json"
DONE_FILE = "done.json"
MANIFEST_FILE = "sweep.json"
BASELINE_DIR = "baselines"
REPORT_FILE = "report.html"
PROBE_FILE = "probe.json"
PROBE_TABLE_FILE = "probe.txt"
RECONSTRUCTION_FIGURE = "reconstruction.png"
BASE_CONFIG_FILE = "base_config.yaml"
VERDICTS_FILE = "verdicts.json"
FINETUNE_FILE = "finetune.json"
COLLAPSE_FILE = "collapse.json"
COLLAPSE_FIGURE = "collapse.png"
ANALYSIS_DIR = "analysis"
FINETUNE_DIR = "finetune"
STUDY_FILE = "study.json"  # a demo folder: derived predictions, undecided rows, curves
CALIBRATION_FILE = "calibration.json"  # the calibration's rows, curves and figure paths
CALIBRATION_DIR = "calibration"  # a demo folder: maelab calibrate's folder (verdicts, figures)
TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run folder (nothing is created until something is written)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root).expanduser())

    @classmethod
    def of_checkpoint(cls, ckpt: str | Path) -> RunFolder:
        """RUN for RUN/checkpoints/x.pt, else the checkpoint file's own folder."""
        p = Path(ckpt).resolve()
        return cls(p.parent.parent if p.parent.name == CHECKPOINT_DIR else p.parent)

    config = property(lambda self: self.root / CONFIG_FILE)
    metrics = property(lambda self: self.root / METRICS_FILE)
    tensorboard = property(lambda self: self.root / TENSORBOARD_DIR)
    checkpoints = property(lambda self: self.root / CHECKPOINT_DIR)
    last_checkpoint = property(lambda self: self.root / CHECKPOINT_DIR / LAST_CHECKPOINT)
    figures = property(lambda self: self.root / FIGURE_DIR)
    features = property(lambda self: self.root / FEATURE_DIR)
    probes = property(lambda self: self.root / PROBE_DIR)
    results = property(lambda self: self.root / RESULTS_FILE)
    done = property(lambda self: self.root / DONE_FILE)
    manifest = property(lambda self: self.root / MANIFEST_FILE)
    baselines = property(lambda self: self.root / BASELINE_DIR)
    report = property(lambda self: self.root / REPORT_FILE)
    probe_result = property(lambda self: self.root / PROBE_FILE)
    probe_table = property(lambda self: self.root / PROBE_TABLE_FILE)
    reconstruction_figure = property(lambda self: self.root / FIGURE_DIR / RECONSTRUCTION_FIGURE)
    base_config = property(lambda self: self.root / BASE_CONFIG_FILE)
    verdicts = property(lambda self: self.root / VERDICTS_FILE)
    finetune_result = property(lambda self: self.root / FINETUNE_FILE)
    collapse_result = property(lambda self: self.root / COLLAPSE_FILE)
    analysis = property(lambda self: self.root / ANALYSIS_DIR)
    finetune_run = property(lambda self: self.root / FINETUNE_DIR)
    calibration_result = property(lambda self: self.root / CALIBRATION_FILE)
    calibration = property(lambda self: self.root / CALIBRATION_DIR)

    def status(self) -> str:
        """'done' (done.json), 'partial' (a checkpoint or a config exists) or 'new'."""
        if self.done.is_file():
            return "done"
        if self.last_checkpoint.is_file() or self.config.is_file():
            return "partial"
        return "new"

    def latest_step(self) -> int:
        """The last logged step of the run (0 before the first log line)."""
        path = self.metrics
        if not path.is_file():
            return 0
        try:
            with path.open("rb") as f:
                f.seek(max(0, path.stat().st_size - 4096))
                lines = f.read().decode(errors="ignore").splitlines()
            for line in reversed(lines):
                if line.strip().startswith("{"):
                    return int(json.loads(line).get("step", 0))
        except (OSError, ValueError):
            pass
        return 0


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write a file through a temp file in the same folder + fsync + rename (never a torn file).

    `write` fills the open binary temp file. On any failure (disk full, Ctrl-C, an error in
    `write`) the previous file at `path` is left as it was and the temp file is removed; after
    a hard kill a `.NAME.*.tmp` file may remain. The file gets the usual umask permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes private 0600 files
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)
    return path


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write `obj` as JSON through `atomic_write`: never a torn results file.

    Tensors, numpy values and paths are converted; the folder is created if needed.
    """
    data = (json.dumps(obj, indent=2, default=_json_default) + "\n").encode()
    return atomic_write(path, lambda f: f.write(data))


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from `path`; {} when the file is missing, unreadable or not an object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):  # torch tensors and numpy arrays / scalars
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot store {type(o).__name__} in JSON")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
