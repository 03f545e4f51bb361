"""What a run folder's result files hold, written and read in one place.

    RUN/results.json        {"metrics": {name: float}, "spectrum": [float], "curve": [{..}], ..}
    SWEEP/baselines/results.json
                            {"baselines": {name: {metric: float, "data": str}},
                             "spectra": {name: [float]}, ..}
    FOLDER/<probe>.json     {"probe": name, "question": str, "source": str, "result": {..}, ..}
                            with its figure FOLDER/<probe>.png beside it
    FOLDER/question_<Qn>.json
                            {"question": "Qn", "checkpoint": str, "result": {..}, "seconds": ..}

Every consumer (the study's measurements, `maelab analyze decoder`, the report) reads through
`read_run_results`, `read_baselines`, `read_probe_records` and `read_question_records`; the
names of the metrics inside are `maelab.metric_names`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maelab.run_folder import RunFolder, read_json, write_json_atomic

METRICS, SPECTRUM, CURVE = "metrics", "spectrum", "curve"
BASELINES, SPECTRA = "baselines", "spectra"
PIXELS, RANDOM_INIT = "pixels", "random_init"  # the baselines of a sweep
DATA = "data"  # the data a baseline was scored on (a string among its metrics)
PROBE, QUESTION, SOURCE, RESULT, SECONDS = "probe", "question", "source", "result", "seconds"


@dataclass(frozen=True)
class RunResults:
    """A run's evaluation: flat numbers, the covariance spectrum, the learning curve."""

    metrics: dict[str, float] = field(default_factory=dict)
    spectrum: list[float] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return bool(self.metrics)


@dataclass(frozen=True)
class Baselines:
    """A sweep's baselines (random-init encoder, raw pixels): metrics and spectra by name."""

    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    spectra: dict[str, list[float]] = field(default_factory=dict)

    @property
    def pixels(self) -> dict[str, Any]:
        return dict(self.metrics.get(PIXELS, {}))


def _numbers(tree: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in tree.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def read_run_results(run_dir: str | Path) -> RunResults:
    """RUN/results.json ({} parts when the run has not been evaluated)."""
    stored = read_json(RunFolder(run_dir).results)
    return RunResults(
        _numbers(stored.get(METRICS, {})),
        [float(v) for v in stored.get(SPECTRUM, [])],
        list(stored.get(CURVE, [])),
    )


def write_run_results(run_dir: str | Path, results: RunResults, **extra: Any) -> Path:
    """Write RUN/results.json atomically; `extra` keys (the evaluation settings, seconds) go
    beside the three parts."""
    record = {METRICS: results.metrics, SPECTRUM: results.spectrum, CURVE: results.curve, **extra}
    return write_json_atomic(RunFolder(run_dir).results, record)


def read_baselines(sweep_dir: str | Path) -> Baselines:
    """SWEEP/baselines/results.json (empty before the baselines ran)."""
    stored = read_json(RunFolder(RunFolder(sweep_dir).baselines).results)
    return Baselines(dict(stored.get(BASELINES, {})), dict(stored.get(SPECTRA, {})))


def write_baselines(baselines_dir: str | Path, baselines: Baselines, **extra: Any) -> Path:
    """Write a baselines folder's results.json atomically (SWEEP/baselines/results.json)."""
    record = {BASELINES: baselines.metrics, SPECTRA: baselines.spectra, **extra}
    return write_json_atomic(RunFolder(baselines_dir).results, record)


@dataclass(frozen=True)
class ProbeRecord:
    """One probe's record in a probe folder, with the path of its figure."""

    probe: str
    question: str  # the claim it measures, one line
    source: str  # what it read: a checkpoint or a sweep folder
    result: dict[str, Any]
    figure: Path
    seconds: float = math.nan

    @property
    def has_figure(self) -> bool:
        return self.figure.is_file()


def probe_record_path(folder: str | Path, probe: str) -> Path:
    return Path(folder) / f"{probe}.json"


def write_probe_record(
    folder: str | Path,
    probe: str,
    question: str,
    source: str | Path,
    result: Any,
    seconds: float,
    **extra: Any,
) -> Path:
    """FOLDER/<probe>.json (`result`: plain JSON values); its figure is FOLDER/<probe>.png."""
    record = {PROBE: probe, QUESTION: question, SOURCE: str(source), SECONDS: seconds,
              RESULT: result, **extra}  # fmt: skip
    return write_json_atomic(probe_record_path(folder, probe), record)


def read_probe_records(folder: str | Path) -> dict[str, ProbeRecord]:
    """The probe records of a folder, by probe name."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        stored = read_json(path)
        if PROBE in stored:
            seconds = stored.get(SECONDS)
            out[stored[PROBE]] = ProbeRecord(
                stored[PROBE], str(stored.get(QUESTION, "")), str(stored.get(SOURCE, "")),
                stored.get(RESULT) or {}, path.with_suffix(".png"),
                float(seconds) if isinstance(seconds, (int, float)) else math.nan,
            )  # fmt: skip
    return out


QUESTION_PREFIX = "question_"
CHECKPOINT = "checkpoint"


def question_file(folder: str | Path, question: str) -> Path:
    """Where a question's record lies in a probe folder: `question_<Qn>.json`."""
    return Path(folder) / f"{QUESTION_PREFIX}{question}.json"


def write_question_record(
    folder: str | Path, question: str, checkpoint: str | Path, result: Any, seconds: float
) -> Path:
    """FOLDER/question_<Qn>.json: a question experiment's `QuestionResult` as plain JSON."""
    record = {QUESTION: question, CHECKPOINT: str(checkpoint), RESULT: result, SECONDS: seconds}
    return write_json_atomic(question_file(folder, question), record)


def read_question_records(folder: str | Path) -> dict[str, dict[str, Any]]:
    """`question_<Qn>.json` records of a probe folder (question -> record)."""
    out = {}
    for path in sorted(Path(folder).glob(f"{QUESTION_PREFIX}Q*.json")):
        record = read_json(path)
        if QUESTION in record and RESULT in record:
            out[record[QUESTION]] = record
    return out
