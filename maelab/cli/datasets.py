"""`maelab datasets`: the data sets maelab knows and where they live."""

from __future__ import annotations

import argparse


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "datasets",
        help="list the datasets maelab knows",
        description="List registered datasets, their sizes and whether they work offline.",
    )
    p.set_defaults(handler=_run_datasets)


def _run_datasets(args: argparse.Namespace) -> int:
    from maelab.data import DATASETS

    print(f"{'name':<18}{'train':>8}{'test':>8}  {'offline':<8} description")
    for e in sorted(DATASETS.values(), key=lambda e: (not e.offline, e.name)):
        tr = "-" if e.num_train is None else str(e.num_train)
        te = "-" if e.num_test is None else str(e.num_test)
        print(
            f"{e.name:<18}{tr:>8}{te:>8}  {'yes' if e.offline else 'download':<8} {e.description}"
        )
    return 0
