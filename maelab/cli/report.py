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
        "identifiability heat map, collapse spectra and the Cao probes, each beside "
        "the paper's prediction with a computed verdict.",
    )
    p.add_argument("folder", help="a run folder or a sweep folder")
    p.add_argument("--out", default=None, help="HTML path (default: FOLDER/report.html)")
    p.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from maelab import verdicts as vd
    from maelab.report import build_report
    from maelab.run_folder import RunFolder

    if not Path(args.folder).is_dir():
        raise ConfigError(f"'{args.folder}' is not a folder; give a run or sweep folder")
    try:
        report = build_report(args.folder, args.out)
    except FileNotFoundError as exc:
        raise MaelabError(str(exc)) from None
    if report.kind == "run":  # one run: the page shows its files, it decides nothing
        print(f"run report: {', '.join(report.sections)}\nreport: {report.path}")
        return 0
    counts = report.counts()
    decided = "".join(
        f", {n} {k}" for k, n in counts.items() if k not in ("agrees", "disagrees", "not measured")
    )  # outcomes of rows decided by an interval: inconclusive, regime not reached
    study = RunFolder(args.folder).verdicts
    print(
        ("outside the study: " if study.is_file() else "")
        + f"{counts['agrees']} predictions agree, {counts['disagrees']} disagree{decided}, "
        f"{counts['not measured']} not measured"
    )
    if study.is_file():  # a demo folder: the study's own rows, decided by paired intervals
        try:
            rows = vd.summary(vd.read_verdicts(study).verdicts)
            print("study (verdicts.json): " + ", ".join(f"{n} {k}" for k, n in rows.items()))
        except vd.VerdictsError as exc:
            print(f"study: not read ({exc}); rerun `maelab demo` on this folder to rewrite it")
    print(f"report: {report.path}")
    return 0
