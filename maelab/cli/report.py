"""`maelab report`: one self-contained HTML page over a run or a sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

from maelab.errors import ConfigError, MaelabError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML page over a run or a sweep",
        description="Training curves, reconstructions, probe tables with baselines, "
        "identifiability heat map, collapse spectra and the Cao probes' figures, and the rows "
        "of every verdicts.json the folder holds (written by maelab demo, maelab analyze "
        "probes and maelab analyze decoder; the report decides none).",
    )
    p.add_argument("folder", help="a run folder or a sweep folder")
    p.add_argument("--out", default=None, help="HTML path (default: FOLDER/report.html)")
    p.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from maelab.experiments.calibration_verdicts import misses
    from maelab.report import build_report
    from maelab.verdicts import VERDICTS_FILE, read_verdicts, summary

    if not Path(args.folder).is_dir():
        raise ConfigError(f"'{args.folder}' is not a folder; give a run or sweep folder")
    try:
        report = build_report(args.folder, args.out)
    except FileNotFoundError as exc:
        raise MaelabError(str(exc)) from None
    if report.kind == "run":  # one run: the page shows its files, it decides nothing
        print(f"run report: {', '.join(report.sections)}")
    for shown in report.shown:
        counts = summary(shown.rows)
        print(f"{shown.path}: " + ", ".join(f"{n} {k}" for k, n in counts.items())
              + " (predictions)")  # fmt: skip
    calibration = Path(args.folder) / VERDICTS_FILE
    if report.kind == "calibration" and calibration.is_file():  # a `maelab calibrate` folder
        record = read_verdicts(calibration)
        rows, missed = len(record.verdicts), len(misses(record))
        print(f"{calibration}: {rows - missed} of {rows} calibration rows as expected")
    elif not report.shown:
        print("no verdicts.json here: the page shows measurements only")
    print(f"report: {report.path}")
    return 0
