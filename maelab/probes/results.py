"""Theory-probe results on disk: a result dataclass as plain JSON, and reading a folder of them.

A probe run writes `<probe>.json` (a record with the probe name, its question, the checkpoint,
seconds and the result) and `<probe>.png` beside it; `read_probe_results` gives the records back.
A question experiment writes `question_<Qn>.json` (the question, the checkpoint, seconds and its
`QuestionResult`); `read_question_results` gives those back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from maelab.run_folder import read_json


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, dicts with int keys and tensors -> plain JSON values (NaN -> null)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else obj
    return obj


QUESTION_PREFIX = "question_"


def question_file(folder: str | Path, question: str) -> Path:
    """Where a question's record lies in a probe folder: `question_<Qn>.json`."""
    return Path(folder) / f"{QUESTION_PREFIX}{question}.json"


def read_question_results(folder: str | Path) -> dict[str, dict[str, Any]]:
    """`question_<Qn>.json` records of a probe folder (question -> record)."""
    out = {}
    for path in sorted(Path(folder).glob(f"{QUESTION_PREFIX}Q*.json")):
        record = read_json(path)
        if "question" in record and "result" in record:
            out[record["question"]] = record
    return out


def read_probe_results(folder: str | Path) -> dict[str, dict[str, Any]]:
    """`<probe>.json` records of a folder written by a probe run (name -> record, with the
    path of its figure under "figure")."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        record = read_json(path)
        if "probe" in record:
            record["figure"] = str(path.with_suffix(".png"))
            out[record["probe"]] = record
    return out
