"""The verdicts.json files a folder holds, as the report shows them: the folder's own (a study:
`maelab demo`) and those of its probe folders (`maelab analyze probes` on a run,
`maelab analyze decoder` on a sweep). The report reads them; it never decides a row."""

from __future__ import annotations

import warnings
from pathlib import Path

from maelab import verdicts as vd
from maelab.report.collect import Collected
from maelab.report.page import ShownVerdicts
from maelab.run_folder import RunFolder


def read_shown(path: Path) -> ShownVerdicts | None:
    """A verdicts file's rows (None when there is none; a damaged one is skipped with a
    warning that names the bad field)."""
    if not path.is_file():
        return None
    try:
        record = vd.read_verdicts(path)
    except vd.VerdictsError as exc:
        warnings.warn(f"report: skipping {path}: {exc}", stacklevel=2)
        return None
    return ShownVerdicts(path, record, record.verdicts)


def study_file(c: Collected) -> ShownVerdicts | None:
    """FOLDER/verdicts.json: the rows a study decided over this folder's runs."""
    return read_shown(RunFolder(c.root).verdicts)


def probe_folders(c: Collected) -> list[Path]:
    """The folder's own probe folder, then its runs'."""
    return [RunFolder(c.root).probes, *(RunFolder(r.path).probes for r in c.runs)]


def probe_files(c: Collected) -> list[ShownVerdicts]:
    """The rows of every probe folder's verdicts.json; a claim shown once (the first wins)."""
    seen: set[str] = set()
    out = []
    for folder in probe_folders(c):
        shown = read_shown(RunFolder(folder).verdicts)
        if shown is None:
            continue
        fresh = tuple(v for v in shown.rows if v.claim not in seen)
        seen.update(v.claim for v in fresh)
        if fresh:
            out.append(ShownVerdicts(shown.path, shown.record, fresh))
    return out
